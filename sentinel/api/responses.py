"""Answers sent straight through ASGI, for code that skips Litestar's response pipeline (middleware, the
``/status`` fast path)."""

from __future__ import annotations

from litestar.types import Send


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
