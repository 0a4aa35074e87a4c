from libc.stdint cimport int64_t


cdef class Event:
    cdef readonly str event_id
    cdef readonly str process_id
    cdef readonly str tenant_id
    cdef readonly int kind
    cdef readonly int64_t ts
    cdef readonly int level
    cdef readonly object process_name
    cdef readonly object process_type
    cdef readonly object package_name
    cdef readonly object procedure_name
    cdef readonly object correlation_id
    cdef readonly object metadata
    cdef readonly object step
    cdef readonly object percent
    cdef readonly object message
    cdef readonly object details
    cdef readonly object component
    cdef readonly object trace_id
    cdef readonly object span_id
    cdef readonly object duration_us
    cdef readonly object result
    cdef readonly object error_code
    cdef readonly object error_message
    cdef readonly object stack_trace
    cdef readonly object reason


cdef Event validate_wire(object wire, str tenant)
cdef int parse_rfc3339(str value, int64_t* out) noexcept
