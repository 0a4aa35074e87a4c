"""What handlers and middleware read straight from the ASGI scope."""

from __future__ import annotations

from litestar.types import Scope

# Any other method name a client sends is reported as "_OTHER" (OpenTelemetry's convention), so that
# made-up methods cannot add metric series or span names.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

# Set in the scope of a HEAD request, which is routed and handled as a GET (``middleware.serve_head``).
HEAD_REQUEST = "sentinel.head"


def method_label(scope: Scope) -> str:
    if scope.get(HEAD_REQUEST):
        return "HEAD"
    method = scope.get("method")
    return method if isinstance(method, str) and method in KNOWN_METHODS else "_OTHER"


def request_target(scope: Scope) -> bytes:
    """The path as the client sent it: percent-encoded, without the URL prefix the app is mounted under
    (``root_path``) and without a query string. Routing normalises slashes ('a//b', 'job/') and a mount
    rewrites ``scope["path"]``, so identifiers that may hold '/' are read from here."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        raise RuntimeError("the ASGI server sent no raw_path (Granian, which Sentinel runs on, always does)")
    raw = raw.split(b"?", 1)[0]
    prefix = scope.get("root_path", "").encode("latin-1")
    if prefix and raw.startswith(prefix):
        raw = raw[len(prefix) :]
    return raw
