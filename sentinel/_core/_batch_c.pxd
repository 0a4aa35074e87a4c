from libc.stdint cimport int64_t


cdef class RowArena:
    cdef readonly Py_ssize_t width
    cdef readonly Py_ssize_t retain
    cdef list _rows
    cdef Py_ssize_t _count

    cdef list take(self)
    cpdef list rows(self)
    cpdef void reset(self)


cdef class _Status:
    """A process's status as the batch builds it: typed, so the rules compare C integers."""
    cdef str tenant_id
    cdef str process_id
    cdef bint has_started, has_step, has_percent, has_metadata, has_terminal
    cdef int64_t started_at, step_at, percent_at, metadata_at, last_seen_at, ended_at
    cdef int rank
    cdef object process_name, process_type, package_name, procedure_name, correlation_id
    cdef object current_step, progress_percent, metadata, terminal_status
    cdef object error_code, error_message, stack_trace, result
    cdef Py_ssize_t event_count, log_count


cdef class BatchBuilder:
    cdef RowArena _logs
    cdef RowArena _statuses
    cdef RowArena _dedupe
    cdef list _pool
    cdef dict _index
