"""The hot path: message decoding, ring-buffer batching and arena-backed batch building.

Each piece is a Cython extension (``*_c``) with a pure-Python twin (``*_py``) of identical
behaviour. The compiled one is used when it was built; ``SENTINEL_NO_EXTENSIONS=1`` forces the twin.
``COMPILED`` says which one this process runs, so the service can report it and a test can insist.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from ._schema import EVENT_FIELDS, EventField, EventWire
from ._shared import (
    DEDUPE_COLUMNS,
    EVENT_TYPES,
    LEVELS,
    LOG_COLUMNS,
    PRIORITIES,
    REJECT_CODES,
    STATUS_COLUMNS,
    Batch,
    BodyRejected,
    EventRejected,
)


def _select() -> tuple[ModuleType, ModuleType, ModuleType, bool, str | None]:
    if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0"):
        from . import _batch_py, _decoder_py, _ring_py

        return _decoder_py, _ring_py, _batch_py, False, "SENTINEL_NO_EXTENSIONS is set"
    try:
        from . import _batch_c, _decoder_c, _ring_c
    except ImportError as exc:
        from . import _batch_py, _decoder_py, _ring_py

        return _decoder_py, _ring_py, _batch_py, False, f"compiled core unavailable: {exc}"
    return _decoder_c, _ring_c, _batch_c, True, None


_decoder, _ring, _batch, COMPILED, FALLBACK_REASON = _select()

if TYPE_CHECKING:
    # Which module serves these is decided at run time; both have the same API, which the compiled
    # core's stubs (``_decoder_c.pyi``, ``_ring_c.pyi``, ``_batch_c.pyi``) describe.
    from ._batch_c import BatchBuilder, RowArena
    from ._decoder_c import Event, decode_batch, decode_one, parse_timestamp, prepare_http, validate
    from ._ring_c import Ring
else:
    Event = _decoder.Event
    decode_batch = _decoder.decode_batch
    decode_one = _decoder.decode_one
    prepare_http = _decoder.prepare_http
    parse_timestamp = _decoder.parse_timestamp
    validate = _decoder.validate
    Ring = _ring.Ring
    BatchBuilder = _batch.BatchBuilder
    RowArena = _batch.RowArena
IMPLEMENTATION = "compiled" if COMPILED else "python"

__all__ = [
    "COMPILED",
    "DEDUPE_COLUMNS",
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "LEVELS",
    "LOG_COLUMNS",
    "PRIORITIES",
    "REJECT_CODES",
    "STATUS_COLUMNS",
    "Batch",
    "BatchBuilder",
    "BodyRejected",
    "Event",
    "EventField",
    "EventRejected",
    "EventWire",
    "Ring",
    "RowArena",
    "decode_batch",
    "decode_one",
    "parse_timestamp",
    "prepare_http",
    "validate",
]
