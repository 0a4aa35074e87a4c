# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled batching: validated events -> arena rows for ``executemany`` (twin: ``_batch_py``).

Each process's status is folded in a typed ``_Status`` (its rules compare C integers) and written
to a reused row once at the end of the batch. Rows and accumulators live in arenas that are reset,
not reallocated, from batch to batch; past ``retain`` rows the extra memory is given back.
"""

cimport cython
from libc.stdint cimport int64_t

from sentinel._core._decoder_c cimport Event

from sentinel._core import _shared

include "_constants.pxi"

cdef Py_ssize_t LOG_WIDTH = len(_shared.LOG_COLUMNS)
cdef Py_ssize_t STATUS_WIDTH = len(_shared.STATUS_COLUMNS)
cdef Py_ssize_t DEDUPE_WIDTH = len(_shared.DEDUPE_COLUMNS)
cdef object _Batch = _shared.Batch
cdef str _COMPLETED = _shared.TERMINAL_STATUS[COMPLETED]
cdef str _FAILED = _shared.TERMINAL_STATUS[ERROR]
cdef str _CANCELLED = _shared.TERMINAL_STATUS[CANCELLED]
cdef int RANK_COMPLETED = _shared.TERMINAL_RANK[COMPLETED]
cdef int RANK_CANCELLED = _shared.TERMINAL_RANK[CANCELLED]
cdef int RANK_ERROR = _shared.TERMINAL_RANK[ERROR]


@cython.final
cdef class RowArena:
    """Reusable fixed-width rows. ``retain`` is the high-water mark kept across resets."""

    def __cinit__(self, Py_ssize_t width, Py_ssize_t retain):
        self.width = width
        self.retain = retain
        self._rows = []
        self._count = 0

    cdef list take(self):
        cdef list row
        if self._count < len(self._rows):
            row = <list>self._rows[self._count]
        else:
            row = [None] * self.width
            self._rows.append(row)
        self._count += 1
        return row

    cpdef list rows(self):
        return self._rows[:self._count]

    cpdef void reset(self):
        self._count = 0
        if len(self._rows) > self.retain:
            del self._rows[self.retain:]

    @property
    def allocated(self):
        return len(self._rows)

    def __len__(self):
        return self._count


@cython.final
@cython.no_gc
@cython.freelist(64)
cdef class _Status:
    pass


cdef inline void _reset_status(_Status st, Event event):
    st.tenant_id = event.tenant_id
    st.process_id = event.process_id
    st.has_started = st.has_step = st.has_percent = st.has_metadata = st.has_terminal = False
    st.started_at = st.step_at = st.percent_at = st.metadata_at = st.ended_at = 0
    st.last_seen_at = event.ts
    st.rank = 0
    st.process_name = st.process_type = st.package_name = st.procedure_name = st.correlation_id = None
    st.current_step = st.progress_percent = st.metadata = st.terminal_status = None
    st.error_code = st.error_message = st.stack_trace = st.result = None
    st.event_count = st.log_count = 0


cdef inline void _apply(_Status st, Event event):
    cdef int64_t ts = event.ts
    cdef int kind = event.kind, rank
    st.event_count += 1
    if ts > st.last_seen_at:
        st.last_seen_at = ts
    if kind == LOG:
        st.log_count += 1
    elif kind == STARTED:
        if not st.has_started or ts > st.started_at:
            st.has_started = True
            st.started_at = ts
            st.process_name = event.process_name
            st.process_type = event.process_type
            st.package_name = event.package_name
            st.procedure_name = event.procedure_name
            st.correlation_id = event.correlation_id
    elif kind == PROGRESS:
        if event.step is not None and (not st.has_step or ts > st.step_at):
            st.has_step = True
            st.step_at = ts
            st.current_step = event.step
        if event.percent is not None and (not st.has_percent or ts > st.percent_at):
            st.has_percent = True
            st.percent_at = ts
            st.progress_percent = event.percent
    elif kind == COMPLETED or kind == ERROR or kind == CANCELLED:
        rank = RANK_COMPLETED if kind == COMPLETED else (RANK_ERROR if kind == ERROR else RANK_CANCELLED)
        if not st.has_terminal or ts > st.ended_at or (ts == st.ended_at and rank > st.rank):
            st.has_terminal = True
            st.terminal_status = _COMPLETED if kind == COMPLETED else (_FAILED if kind == ERROR else _CANCELLED)
            st.rank = rank
            st.ended_at = ts
            st.result = event.result
            st.error_code = event.error_code
            st.error_message = event.reason if kind == CANCELLED else event.error_message
            st.stack_trace = event.stack_trace
    if event.metadata is not None and (not st.has_metadata or ts > st.metadata_at):
        st.has_metadata = True
        st.metadata_at = ts
        st.metadata = event.metadata


cdef inline void _status_row(list row, _Status st, object now):
    row[0] = st.tenant_id
    row[1] = st.process_id
    row[2] = st.started_at if st.has_started else None
    row[3] = st.process_name
    row[4] = st.process_type
    row[5] = st.package_name
    row[6] = st.procedure_name
    row[7] = st.correlation_id
    row[8] = st.step_at if st.has_step else None
    row[9] = st.current_step
    row[10] = st.percent_at if st.has_percent else None
    row[11] = st.progress_percent
    row[12] = st.metadata_at if st.has_metadata else None
    row[13] = st.metadata
    row[14] = st.last_seen_at
    row[15] = st.terminal_status
    row[16] = st.rank
    row[17] = st.ended_at if st.has_terminal else None
    row[18] = st.error_code
    row[19] = st.error_message
    row[20] = st.stack_trace
    row[21] = st.result
    row[22] = st.event_count
    row[23] = st.log_count
    row[24] = now


cdef inline void _log_row(list row, Event event, object now):
    row[0] = event.tenant_id
    row[1] = event.process_id
    row[2] = event.event_id
    row[3] = event.ts
    row[4] = event.level
    row[5] = event.message
    row[6] = event.details
    row[7] = event.component
    row[8] = event.correlation_id
    row[9] = event.trace_id
    row[10] = event.span_id
    row[11] = event.duration_us
    row[12] = now


@cython.final
cdef class BatchBuilder:
    """Applies SPEC section 3 to a batch: one coalesced status row per process, log rows, dedupe keys."""

    def __cinit__(self, Py_ssize_t retain=4096):
        self._logs = RowArena(LOG_WIDTH, retain)
        self._statuses = RowArena(STATUS_WIDTH, retain)
        self._dedupe = RowArena(DEDUPE_WIDTH, retain)
        self._pool = []
        self._index = {}

    def arena_sizes(self):
        return self._logs.allocated, self._statuses.allocated, self._dedupe.allocated

    def build(self, events, seen, object now_us):
        """``seen`` holds the ``(tenant_id, event_id)`` keys already stored; those events, and repeats
        within this batch, are counted as duplicates and change nothing."""
        cdef Event event
        cdef _Status st
        cdef list order = []
        cdef list row
        cdef set batch_keys = set()
        cdef Py_ssize_t counts[7]
        cdef Py_ssize_t duplicates = 0, used = 0, i
        cdef dict index = self._index
        cdef list pool = self._pool
        cdef bint check_seen = len(seen) > 0
        cdef tuple key, pkey
        cdef list todo = events if type(events) is list else list(events)
        cdef Py_ssize_t position, total = len(todo)
        for i in range(7):
            counts[i] = 0
        self._logs.reset()
        self._statuses.reset()
        self._dedupe.reset()
        index.clear()
        for position in range(total):
            event = <Event>todo[position]
            key = (event.tenant_id, event.event_id)
            if key in batch_keys or (check_seen and key in seen):
                duplicates += 1
                continue
            batch_keys.add(key)
            row = self._dedupe.take()
            row[0] = event.tenant_id
            row[1] = event.event_id
            row[2] = now_us
            counts[event.kind] += 1
            pkey = (event.tenant_id, event.process_id)
            found = index.get(pkey)
            if found is None:
                if used < len(pool):
                    st = <_Status>pool[used]
                else:
                    st = _Status.__new__(_Status)
                    pool.append(st)
                used += 1
                _reset_status(st, event)
                index[pkey] = st
                order.append(st)
            else:
                st = <_Status>found
            _apply(st, event)
            if event.kind == LOG:
                _log_row(self._logs.take(), event, now_us)
        for i in range(len(order)):
            _status_row(self._statuses.take(), <_Status>order[i], now_us)
        if len(pool) > self._statuses.retain:
            del pool[self._statuses.retain:]
        return _Batch(self._logs.rows(), self._statuses.rows(), self._dedupe.rows(), [counts[i] for i in range(7)],
                      duplicates)
