"""The request's principal: the verified bearer token, with a short cache of verified tokens.

High-throughput clients send the same token on every request; checking its signature each time would
cost more than the request itself. A token that verified is remembered (by its exact text) until the
earlier of its own expiry or ``CACHE_SECONDS``; failures are never cached, and the cache is bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from litestar import Request

from sentinel.security import AuthError, Principal, TokenVerifier

CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000


class PrincipalResolver:
    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def __call__(self, authorization: str | None) -> Principal:
        now = time.time()
        if authorization is not None:
            hit = self._cache.get(authorization)
            if hit is not None:
                if hit[1] > now:
                    return hit[0]
                del self._cache[authorization]
        principal = await self.verifier.verify(authorization)
        assert authorization is not None  # verify() refuses a missing header
        until = now + CACHE_SECONDS
        if principal.expires_at is not None:
            until = min(until, principal.expires_at + self.verifier.leeway)
        self._cache[authorization] = (principal, until)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    resolver: PrincipalResolver = request.app.state.principals
    return await resolver(request.headers.get("authorization"))


def require_ingest(principal: Principal, role: str) -> None:
    if not principal.has_role(role):
        raise AuthError(403, "missing_role", f"posting events needs the '{role}' role")
