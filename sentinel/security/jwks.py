"""Signing keys of the identity provider, cached by ``kid`` (SPEC section 4).

Keys come from a JWKS URL, from OIDC discovery on the issuer, or from a static JWKS (dev mode). Fetching is
blocking ``urllib`` run in a worker thread so the event loop never waits on the network, and every fetch
shares one in-flight task so a burst of requests that all miss the cache costs one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["KID_PATTERN", "SUPPORTED_ALGORITHMS", "JwksCache", "JwksError", "parse_jwks"]

log = logging.getLogger(__name__)

# A kid is compared as an opaque string, but it also reaches logs and dict lookups; keeping it to a plain
# alphabet means a hostile token cannot smuggle paths, quotes or control characters anywhere.
KID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Pinning one algorithm per key type is what defeats algorithm confusion: an RSA key can only ever check
# RS256 and a P-256 key only ES256, whatever the token header claims.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})

_MIN_RSA_BITS = 2048
# A JWKS is a few kilobytes; the cap keeps a misbehaving endpoint from filling memory.
_MAX_DOCUMENT_BYTES = 1024 * 1024
_USER_AGENT = "process-sentinel-jwks/1"


class JwksError(Exception):
    """A JWKS or discovery document could not be fetched or used; the message names the reason."""


def _key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    kty = jwk.get("kty")
    if kty == "RSA":
        return "RS256"
    if kty == "EC" and jwk.get("crv") == "P-256":
        return "ES256"
    return None


def _public_members(jwk: Mapping[str, Any], alg: str) -> dict[str, Any]:
    # Only public members are passed on: PyJWT would build a private key from a JWK that carries "d", and
    # an "alg" member would override the algorithm this module pins.
    if alg == "RS256":
        return {"kty": "RSA", "n": jwk.get("n"), "e": jwk.get("e")}
    return {"kty": "EC", "crv": "P-256", "x": jwk.get("x"), "y": jwk.get("y")}


def parse_jwks(document: object) -> dict[tuple[str, str], jwt.PyJWK]:
    """Usable signing keys of a JWKS document, keyed by ``(kid, alg)``.

    Keys that are not for signatures, of an unsupported type or curve, weaker than 2048-bit RSA, without a
    plain ``kid``, or malformed are skipped rather than failing the whole set, because providers routinely
    publish encryption keys and other algorithms next to the ones that sign tokens.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksError("JWKS document has no 'keys' list")
    keys: dict[tuple[str, str], jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or KID_PATTERN.fullmatch(kid) is None:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        alg = _key_algorithm(entry)
        if alg is None:
            continue
        declared = entry.get("alg")
        if declared is not None and declared != alg:
            continue
        try:
            key = jwt.PyJWK(_public_members(entry, alg), algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < _MIN_RSA_BITS:
            continue
        keys.setdefault((kid, alg), key)
    return keys


def _check_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise JwksError(f"{name} must be an http(s) URL, got {url!r}")
    return url


def _build_opener() -> urllib.request.OpenerDirector:
    # Built by hand rather than with build_opener() so that file:, ftp: and data: handlers are absent: a
    # redirect (or a discovered jwks_uri) can then only ever lead to another HTTP(S) URL.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class JwksCache:
    """Keys by ``kid``, refreshed in the background and, rate-limited, when a token names an unknown kid.

    Built from exactly one source: ``jwks_uri=`` (a JWKS URL), ``issuer=`` (OIDC discovery:
    ``{issuer}/.well-known/openid-configuration`` names the ``jwks_uri``) or ``static_jwks=`` (dev mode,
    never fetches). A failed fetch never drops keys: the
    ones already cached keep verifying tokens until a successful fetch replaces the whole set (which is
    also how a key the provider has withdrawn stops being accepted).
    """

    def __init__(
        self,
        *,
        jwks_uri: str | None = None,
        issuer: str | None = None,
        static_jwks: Mapping[str, Any] | None = None,
        fetch_timeout: float = 2.0,
        min_refetch_interval: float = 30.0,
        refresh_interval: float = 600.0,
        on_fetch: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sources = sum(source is not None for source in (jwks_uri, issuer, static_jwks))
        if sources != 1:
            raise ValueError("JwksCache needs exactly one of jwks_uri, issuer or static_jwks")
        if fetch_timeout <= 0 or min_refetch_interval < 0 or refresh_interval <= 0:
            raise ValueError("JwksCache intervals must be positive")
        self._jwks_uri = None if jwks_uri is None else _check_url(jwks_uri, "jwks_uri")
        self._issuer = None if issuer is None else _check_url(issuer, "issuer")
        self._discovered_uri: str | None = None
        self._fetch_timeout = fetch_timeout
        self._min_refetch_interval = min_refetch_interval
        self._refresh_interval = refresh_interval
        self._on_fetch = on_fetch
        self._clock = clock
        self._static = static_jwks is not None
        self._keys: dict[tuple[str, str], jwt.PyJWK] = {}
        if static_jwks is not None:
            self._keys = parse_jwks(static_jwks)
            if not self._keys:
                raise JwksError("static JWKS has no usable signing key")
        self._last_attempt = -math.inf
        self._inflight: asyncio.Task[bool] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._opener = _build_opener()
        self.last_error: str | None = None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(kid for kid, _ in self._keys)

    def ready(self) -> bool:
        """True once at least one signing key is known (cached keys count even while the provider is down)."""
        return bool(self._keys)

    async def start(self) -> None:
        """Load the keys once and keep them fresh in the background; a failed first load is not fatal."""
        if self._static or (self._refresher is not None and not self._refresher.done()):
            return
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_loop(), name="sentinel-jwks-refresh")

    async def close(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def get(self, kid: str, alg: str) -> jwt.PyJWK | None:
        """The key for ``kid`` that verifies ``alg``, fetching at most once per ``min_refetch_interval``."""
        key = self._keys.get((kid, alg))
        if key is not None or self._static:
            return key
        if KID_PATTERN.fullmatch(kid) is None or alg not in SUPPORTED_ALGORITHMS:
            return None
        inflight = self._current_inflight()
        if inflight is None:
            if self._clock() - self._last_attempt < self._min_refetch_interval:
                return None
            inflight = self._start_fetch()
        # Shielded so that a client hanging up cancels only its own wait, not the fetch others share.
        await asyncio.shield(inflight)
        return self._keys.get((kid, alg))

    async def refresh(self) -> bool:
        """Fetch now (joining a fetch already under way); True when the key set was replaced."""
        if self._static:
            return True
        inflight = self._current_inflight() or self._start_fetch()
        return await asyncio.shield(inflight)

    def _current_inflight(self) -> asyncio.Task[bool] | None:
        task = self._inflight
        # A task from another (possibly closed) event loop cannot be awaited here; start afresh instead.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _start_fetch(self) -> asyncio.Task[bool]:
        self._last_attempt = self._clock()
        task = asyncio.get_running_loop().create_task(self._fetch(), name="sentinel-jwks-fetch")
        self._inflight = task
        return task

    async def _refresh_loop(self) -> None:
        while True:
            # After a failure, retry as soon as the unknown-kid rate limit would allow, not a full TTL later.
            delay = self._refresh_interval
            if self.last_error is not None:
                delay = min(delay, self._min_refetch_interval)
            await asyncio.sleep(max(delay, 0.01))
            await self.refresh()

    async def _fetch(self) -> bool:
        try:
            keys = await asyncio.to_thread(self._fetch_blocking)
        except Exception as exc:
            self.last_error = str(exc) or type(exc).__name__
            log.warning("JWKS fetch failed, keeping %d cached key(s): %s", len(self._keys), self.last_error)
            self._report(ok=False)
            return False
        self._keys = keys
        self.last_error = None
        log.info("JWKS loaded: %d signing key(s)", len(keys))
        self._report(ok=True)
        return True

    def _report(self, *, ok: bool) -> None:
        if self._on_fetch is None:
            return
        try:
            self._on_fetch(ok)
        except Exception:
            # Metrics must never break authentication.
            log.exception("JWKS on_fetch callback failed")

    def _fetch_blocking(self) -> dict[tuple[str, str], jwt.PyJWK]:
        # One deadline covers discovery and the JWKS request together, so a fetch never outlives the timeout
        # by more than one socket operation even against a server that trickles bytes.
        deadline = time.monotonic() + self._fetch_timeout
        uri = self._jwks_uri or self._discovered_uri
        if uri is None:
            uri = self._discover(deadline)
        try:
            keys = parse_jwks(self._get_json(uri, deadline))
        except JwksError:
            # The provider may have moved its JWKS; discover again next time.
            self._discovered_uri = None
            raise
        if not keys:
            raise JwksError(f"JWKS at {uri} has no usable signing key")
        return keys

    def _discover(self, deadline: float) -> str:
        assert self._issuer is not None
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url, deadline)
        if not isinstance(document, Mapping):
            raise JwksError(f"discovery document at {url} is not a JSON object")
        # OpenID Connect Discovery 1.0 section 4.3: the document must name exactly the issuer asked for.
        if document.get("issuer") != self._issuer:
            raise JwksError(f"discovery document at {url} names a different issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise JwksError(f"discovery document at {url} has no jwks_uri")
        _check_url(uri, "jwks_uri")
        if urlsplit(self._issuer).scheme == "https" and urlsplit(uri).scheme != "https":
            raise JwksError(f"discovery document at {url} downgrades jwks_uri to http")
        self._discovered_uri = uri
        return uri

    def _get_json(self, url: str, deadline: float) -> object:
        request = urllib.request.Request(  # noqa: S310 - scheme checked to be http(s) by _check_url
            url, headers={"Accept": "application/json", "User-Agent": _USER_AGENT}
        )
        try:
            with self._opener.open(request, timeout=self._remaining(deadline, url)) as response:
                body = bytearray()
                while chunk := response.read(16384):
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise JwksError(f"{url}: document larger than {_MAX_DOCUMENT_BYTES} bytes")
                    self._remaining(deadline, url)
        except urllib.error.HTTPError as exc:
            # The error doubles as the response; closing it releases the socket now rather than at GC.
            exc.close()
            raise JwksError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise JwksError(f"{url}: {reason}") from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
            raise JwksError(f"{url}: not valid JSON") from None

    def _remaining(self, deadline: float, url: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise JwksError(f"{url}: timed out after {self._fetch_timeout:g} s")
        return remaining
