# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled ring buffer: a bounded FIFO of object references in a C array (twin: ``_ring_py``).

Not thread-safe: each user (the ingest worker, the API's event producer) keeps its own, used from one thread."""

cimport cython
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject


@cython.final
cdef class Ring:
    def __cinit__(self, Py_ssize_t capacity):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items = <void**>PyMem_Calloc(capacity, sizeof(void*))
        self._stamps = <double*>PyMem_Calloc(capacity, sizeof(double))
        if self._items == NULL or self._stamps == NULL:
            raise MemoryError()
        self._head = 0
        self._size = 0

    def __dealloc__(self):
        if self._items != NULL:
            self.clear()
            PyMem_Free(self._items)
        if self._stamps != NULL:
            PyMem_Free(self._stamps)

    def __len__(self):
        return self._size

    @property
    def free(self):
        return self.capacity - self._size

    cpdef bint push(self, object item, double stamp) except -1:
        """Append ``item``; ``False`` (and nothing stored) when the ring is full."""
        cdef Py_ssize_t slot
        if self._size == self.capacity:
            return False
        slot = (self._head + self._size) % self.capacity
        Py_INCREF(item)
        self._items[slot] = <void*>item
        self._stamps[slot] = stamp
        self._size += 1
        return True

    cpdef list pop_many(self, Py_ssize_t limit):
        """Remove and return up to ``limit`` items, oldest first."""
        cdef Py_ssize_t count = limit if limit < self._size else self._size
        cdef Py_ssize_t i
        cdef list out = []
        cdef object item
        if count < 0:
            count = 0
        for i in range(count):
            item = <object>self._items[self._head]
            out.append(item)
            Py_DECREF(item)  # the list holds its own reference now
            self._items[self._head] = NULL
            self._head = (self._head + 1) % self.capacity
        self._size -= count
        return out

    cpdef double oldest_stamp(self) noexcept:
        """The stamp of the oldest item, or -1.0 when empty."""
        return self._stamps[self._head] if self._size else -1.0

    def clear(self):
        self.pop_many(self._size)
