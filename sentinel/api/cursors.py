"""Opaque, tamper-evident keyset cursors.

A cursor carries the keyset position and is signed (HMAC-SHA256, a per-database secret shared by every
replica) over the position, the caller's tenant and the query's binding (the filters it came from). A
cursor that was edited, belongs to another tenant, or is replayed against different filters fails the
check: a precise 400, never another page of somebody else's data and never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import msgspec

from sentinel.api.problems import ApiProblem

_TAG = 16


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes, tenant: str, binding: Sequence[Any]) -> bytes:
        bound = msgspec.json.encode([tenant, list(binding)])
        return hmac.new(self._secret, bound + b"\0" + body, hashlib.sha256).digest()[:_TAG]

    def encode(self, position: Sequence[Any], tenant: str, binding: Sequence[Any]) -> str:
        body = msgspec.json.encode(list(position))
        token = body + self._mac(body, tenant, binding)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, cursor: str, tenant: str, binding: Sequence[Any], shape: tuple[type, ...]) -> list[Any]:
        if len(cursor) > 1024:
            raise ApiProblem(400, "cursor: too long", code="bad_cursor")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise ApiProblem(400, "cursor: not a cursor issued by this API", code="bad_cursor") from None
        body, tag = raw[:-_TAG], raw[-_TAG:]
        if len(raw) <= _TAG or not hmac.compare_digest(tag, self._mac(body, tenant, binding)):
            raise ApiProblem(
                400,
                "cursor: not valid for this tenant and these filters (edited, foreign or stale)",
                code="bad_cursor",
            )
        try:
            position = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise ApiProblem(400, "cursor: not a cursor issued by this API", code="bad_cursor") from None
        if (
            not isinstance(position, list)
            or len(position) != len(shape)
            or not all(type(v) is t for v, t in zip(position, shape, strict=True))
        ):
            raise ApiProblem(400, "cursor: not a cursor issued by this API", code="bad_cursor")
        return position
