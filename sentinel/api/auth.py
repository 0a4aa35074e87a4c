"""The request's principal: the verified bearer token, with a short cache of verified tokens.

High-throughput clients send the same token on every request; checking its signature each time would
cost more than the request itself. A token that verified is remembered (by its exact text) until the
earlier of its own expiry (plus the verifier's leeway) or ``CACHE_SEC``; failures are never cached, and
the cache is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.types import Scope

from sentinel.security import Principal, TokenVerifier

if TYPE_CHECKING:
    from sentinel.api.runtime import Runtime  # which holds a PrincipalResolver

CACHE_SEC = 60.0
CACHE_SIZE = 10_000


class PrincipalResolver:
    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def __call__(self, authorization: str | None) -> Principal:
        now = self.verifier.clock()
        if authorization is not None:
            hit = self._cache.get(authorization)
            if hit is not None:
                if hit[1] > now:
                    return hit[0]
                del self._cache[authorization]
        principal = await self.verifier.verify(authorization)
        assert authorization is not None  # verify() refuses a missing header
        until = now + CACHE_SEC
        if principal.expires_at is not None:
            until = min(until, principal.expires_at + self.verifier.leeway)
        self._cache[authorization] = (principal, until)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    async def of(self, scope: Scope) -> Principal:
        """The caller of this request. The header is read from the ASGI scope itself: building Litestar's
        header mapping for this one lookup would cost more than the cached check."""
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                # The only one: a request with two was refused by middleware.single_authorization.
                authorization = value.decode("latin-1")
                break
        return await self(authorization)


async def provide_principal(scope: Scope) -> Principal:
    """The ``principal`` dependency of handlers that take parameters: Litestar resolves it before it
    validates them, so a request without a valid token is refused before anything else is said."""
    runtime: Runtime = Litestar.from_scope(scope).state.runtime
    return await runtime.principals.of(scope)
