cdef class Ring:
    cdef readonly Py_ssize_t capacity
    cdef void** _items
    cdef double* _stamps
    cdef Py_ssize_t _head
    cdef Py_ssize_t _size

    cpdef bint push(self, object item, double stamp) except -1
    cpdef list pop_many(self, Py_ssize_t limit)
    cpdef double oldest_stamp(self) noexcept
