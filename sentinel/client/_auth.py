"""Where the client's bearer token comes from: a static token, or OAuth2 client credentials.

``ClientCredentials`` is how a service gets tokens from an identity provider such as Keycloak: it posts
``grant_type=client_credentials`` to the issuer's token endpoint (given, or found by OIDC discovery)
and keeps the answer until shortly before it expires, so no request ever carries an expired token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

import httpx
import msgspec

from sentinel.client._errors import ConfigurationError, TokenError

__all__ = ["ClientCredentials", "StaticToken", "TokenSource"]


class TokenSource(Protocol):
    def token(self) -> str:
        """A token valid now (fetched or refreshed if need be)."""
        ...

    async def atoken(self) -> str: ...

    def invalidate(self, token: str) -> None:
        """The server refused ``token``: forget it so the next call fetches a new one (if it can)."""
        ...


class StaticToken:
    """A token given once (``--token``, ``SENTINEL_TOKEN``); it is never refreshed."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token or any(c.isspace() for c in token):
            raise ConfigurationError("token: expected a JWT without spaces")
        self._token = token

    def token(self) -> str:
        return self._token

    async def atoken(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """A static token cannot be renewed; the caller sees the 401."""


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: float = 300.0
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


class _Discovery(msgspec.Struct):
    token_endpoint: str


class ClientCredentials:
    """OAuth2 client credentials (RFC 6749 section 4.4), refreshed before expiry.

    ``token_url`` is the token endpoint; without it, ``issuer`` is asked for its OIDC discovery
    document. The secret is sent with HTTP Basic authentication (``client_secret_basic``). A token is
    renewed once less than ``refresh_margin`` seconds (or half its lifetime, if shorter) remain."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | None = None,
        audience: str | None = None,
        refresh_margin: float = 30.0,
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("client credentials: client_id and client_secret are required")
        if token_url is None and issuer is None:
            raise ConfigurationError("client credentials: give token_url or issuer")
        self.client_id = client_id
        self._secret = client_secret
        self.token_url = token_url
        self.issuer = issuer.rstrip("/") if issuer else None
        self.scope = scope
        self.audience = audience
        self.refresh_margin = refresh_margin
        self._http = httpx.Client(timeout=timeout, verify=verify, trust_env=False)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0

    def _endpoint(self) -> str:
        if self.token_url is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                answer = self._http.get(url)
            except httpx.TransportError as exc:
                raise TokenError(f"cannot reach the identity provider at {url}: {exc}") from None
            if answer.status_code != 200:
                raise TokenError(f"OIDC discovery at {url} answered {answer.status_code}")
            try:
                self.token_url = msgspec.json.decode(answer.content, type=_Discovery).token_endpoint
            except msgspec.MsgspecError:
                raise TokenError(f"OIDC discovery at {url}: no token_endpoint in the answer") from None
        return self.token_url

    def _fetch(self) -> None:
        url = self._endpoint()
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        try:
            answer = self._http.post(url, data=form, auth=(self.client_id, self._secret))
        except httpx.TransportError as exc:
            raise TokenError(f"cannot reach the token endpoint {url}: {exc}") from None
        if answer.status_code != 200:
            detail = " ".join(answer.text.split())[:200]
            raise TokenError(f"token endpoint {url} answered {answer.status_code}: {detail}")
        try:
            parsed = msgspec.json.decode(answer.content, type=_TokenAnswer)
        except msgspec.MsgspecError as exc:
            raise TokenError(f"token endpoint {url}: unreadable answer ({exc})") from None
        lifetime = max(0.0, parsed.expires_in)
        self._token = parsed.access_token
        self._renew_at = time.monotonic() + lifetime - min(self.refresh_margin, lifetime / 2)
        self.fetches += 1

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    async def atoken(self) -> str:
        with self._lock:
            if self._token is not None and time.monotonic() < self._renew_at:
                return self._token
        return await asyncio.to_thread(self.token)

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def close(self) -> None:
        self._http.close()
