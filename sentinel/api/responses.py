"""Answers sent straight through ASGI, for handlers that skip Litestar's response pipeline."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import Send

_encode = msgspec.json.Encoder().encode


async def send_json(send: Send, document: Any, status: int = 200) -> None:
    """Encodes ``document`` (a msgspec Struct) and sends it as the whole answer.

    For ``GET /status``: Litestar's response pipeline (a Response object, a header multidict, the encoder
    lookup) costs more than reading the status row from SQLite.
    """
    await send_body(send, status, b"application/json", _encode(document))


async def send_body(
    send: Send, status: int, content_type: bytes, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """``body`` as the whole answer, with its type, its length and ``headers``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *(headers or ())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
