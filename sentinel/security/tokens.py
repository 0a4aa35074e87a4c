"""Bearer token verification (SPEC section 4).

Everything a client controls is checked before it is used: the header's length before parsing, the ``alg``
and ``kid`` before a key lookup, and the claims only after the signature holds. Verification itself is a
few hundred microseconds of CPU, so it runs on the event loop; only key fetching leaves it.

Whatever a token holds, checking it ends in a :class:`Principal` or an :class:`AuthError`, never in another
exception: a hostile token must not be able to turn a refusal into a server error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from sentinel._core._shared import MAX_TENANT_ID as _MAX_TENANT_LENGTH
from sentinel._core._shared import MAX_US
from sentinel.security.jwks import KID_PATTERN, SUPPORTED_ALGORITHMS, JwksCache

__all__ = ["NUMERIC_DATE_MAX", "TIME_CLAIMS", "AuthError", "Principal", "TokenVerifier", "require_role"]

log = logging.getLogger(__name__)

# Header parameters that would make the token choose its own key (RFC 8725 section 3.10 and RFC 7515
# 4.1.2-4.1.5). They are never followed; a token carrying one of the fetchable ones is refused outright
# because a legitimate issuer using a JWKS has no reason to send them. x5c is merely ignored: some
# providers include the certificate chain, and the key is still taken only from the JWKS.
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk")

# The registered time claims (RFC 7519 section 4.1.4-4.1.6). Each is a NumericDate: a JSON number of seconds
# since 1970-01-01T00:00:00Z (section 2), integer or not. A string, a boolean, null, an array or an object
# is refused, and so is a number that is not finite or lies outside 0..NUMERIC_DATE_MAX (9999-12-31T23:59:59Z,
# the last instant the rest of Sentinel can write); every accepted value fits a float exactly enough for
# the comparisons below and for the verified-token cache.
TIME_CLAIMS = ("exp", "nbf", "iat")
NUMERIC_DATE_MAX = MAX_US // 1_000_000

# What parsing a hostile token can raise besides PyJWT's own errors, depending on the PyJWT version: JSON
# nested too deep, numbers too long to convert, base64 that is not. Any of them is a malformed token.
_MALFORMED = (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    subject: str | None
    tenant: str
    roles: frozenset[str]
    # The token's ``exp`` (Unix seconds), for caches of verified tokens; not part of who the principal is.
    expires_at: float | None = field(default=None, compare=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles


class AuthError(Exception):
    """A request's credentials are malformed (400), not authenticated (401) or not allowed (403).

    ``detail`` is short, precise and safe to send to the client: it never contains the token or any claim
    value from it. ``code`` is a stable machine string for logs and metrics.
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    @property
    def www_authenticate(self) -> str | None:
        """The ``WWW-Authenticate`` value for a 400 or 401 (RFC 6750 section 3), or None for a 403."""
        if self.status not in (400, 401):
            return None
        if self.code == "missing_token":
            # RFC 6750 section 3.1: no error code when the request carried no credentials at all.
            return "Bearer"
        malformed = self.status == 400 or self.code in {"invalid_request", "token_too_large"}
        error = "invalid_request" if malformed else "invalid_token"
        description = self.detail.replace("\\", "").replace('"', "'")
        return f'Bearer error="{error}", error_description="{description}"'

    def __repr__(self) -> str:
        return f"AuthError(status={self.status}, code={self.code!r}, detail={self.detail!r})"


def _unauthorized(code: str, detail: str) -> AuthError:
    return AuthError(401, code, detail)


def require_role(principal: Principal, role: str, action: str = "this request") -> None:
    """Raise 403 ``missing_role`` unless the principal holds ``role``; the detail names the ``action``."""
    if not principal.has_role(role):
        raise AuthError(403, "missing_role", f"{action} needs the '{role}' role")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as Unix seconds, None when absent; 401 unless it is a NumericDate in range."""
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int subclass, but JSON true is not a number. Python's JSON parser yields inf for 1e400 and
    # accepts NaN and Infinity; an int may have any number of digits, so it is compared, never converted.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise _unauthorized("invalid_token", f"token claim '{name}' must be a NumericDate (a JSON number of seconds)")
    if not 0 <= value <= NUMERIC_DATE_MAX:
        raise _unauthorized("invalid_token", f"token claim '{name}' is outside 0..{NUMERIC_DATE_MAX}")
    return float(value)


def _string_list(value: object) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {item for item in value if isinstance(item, str) and item}


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    roles = _string_list(claims.get("roles"))
    realm_access = claims.get("realm_access")
    if isinstance(realm_access, Mapping):
        roles |= _string_list(realm_access.get("roles"))
    return frozenset(roles)


class TokenVerifier:
    """Turns an ``Authorization`` header into a :class:`Principal` or raises :class:`AuthError`."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        tenant_claim: str = "tenant_id",
        *,
        leeway: float = 30,
        max_token_bytes: int = 8192,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or not audience or not tenant_claim:
            raise ValueError("TokenVerifier needs an issuer, an audience and a tenant claim name")
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.tenant_claim = tenant_claim
        self.leeway = leeway
        self.max_token_bytes = max_token_bytes
        # Wall-clock seconds (Unix time), as the time claims are; the verified-token cache reads it too.
        self.clock = clock

    async def start(self) -> None:
        await self.jwks.start()

    async def close(self) -> None:
        await self.jwks.close()

    def ready(self) -> bool:
        return self.jwks.ready()

    async def verify(self, authorization: str | None) -> Principal:
        try:
            return await self._verify(authorization)
        except AuthError:
            raise
        except Exception:
            # Every input above is checked by type before use, so this is a defect, logged as one; the
            # client still gets what it would for any other token that cannot be verified.
            log.exception("token check failed unexpectedly; the request is refused with 401")
            raise _unauthorized("invalid_token", "token could not be verified") from None

    async def _verify(self, authorization: str | None) -> Principal:
        token = self._bearer_token(authorization)
        alg, kid = self._checked_header(token)
        key = await self.jwks.get(kid, alg)
        if key is None:
            raise _unauthorized("unknown_key", "token is signed by an unknown key")
        claims = self._decode(token, key)
        times = {name: _numeric_date(claims, name) for name in TIME_CLAIMS}
        now = self.clock()
        expires_at = times["exp"]
        if expires_at is None:  # PyJWT's "require" already refuses this; kept so the rule reads whole here
            raise _unauthorized("invalid_token", "token lacks the 'exp' claim")
        if expires_at <= now - self.leeway:
            raise _unauthorized("expired", "token has expired")
        for name in ("nbf", "iat"):
            moment = times[name]
            if moment is not None and moment > now + self.leeway:
                raise _unauthorized("not_yet_valid", "token is not valid yet")
        return Principal(
            subject=self._subject(claims),
            tenant=self._tenant(claims),
            roles=_roles(claims),
            expires_at=expires_at,
        )

    def _bearer_token(self, authorization: str | None) -> str:
        if authorization is None or not authorization.strip():
            raise _unauthorized("missing_token", "missing bearer token")
        # Checked before any parsing so an oversized header costs nothing. Headers arrive latin-1 decoded,
        # so characters are bytes; a non-ASCII token is refused below anyway.
        if len(authorization) > self.max_token_bytes:
            raise _unauthorized("token_too_large", f"authorization header exceeds {self.max_token_bytes} bytes")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("invalid_request", "authorization header must be 'Bearer <token>'")
        if not token.isascii() or token.count(".") != 2:
            raise _unauthorized("invalid_token", "token is not a well-formed JWT")
        return token

    @staticmethod
    def _checked_header(token: str) -> tuple[str, str]:
        try:
            header = jwt.get_unverified_header(token)
        except _MALFORMED:
            raise _unauthorized("invalid_token", "token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
            raise _unauthorized("unsupported_alg", "token algorithm must be RS256 or ES256")
        if any(name in header for name in _FORBIDDEN_HEADERS):
            raise _unauthorized("forbidden_header", "token header must not carry jku, x5u or jwk")
        kid = header.get("kid")
        if kid is None:
            raise _unauthorized("invalid_kid", "token header has no kid")
        if not isinstance(kid, str) or KID_PATTERN.fullmatch(kid) is None:
            raise _unauthorized("invalid_kid", "token kid must be 1-128 characters of A-Z a-z 0-9 . _ -")
        return alg, kid

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                # The key's own algorithm, never the header's: the cache already pins one per key type.
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                # The time claims are checked by _numeric_date and _verify, strictly: PyJWT converts with
                # int(), which takes "1767225600" and true, and older releases fail on 1e400 with an error
                # of their own.
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidIssuerError:
            raise _unauthorized("invalid_issuer", "token issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("invalid_audience", "token audience does not include this service") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized("invalid_token", f"token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("invalid_signature", "token signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise _unauthorized("unsupported_alg", "token algorithm does not match its key") from None
        except _MALFORMED:
            raise _unauthorized("invalid_token", "token is malformed or invalid") from None

    @staticmethod
    def _subject(claims: Mapping[str, Any]) -> str | None:
        subject = claims.get("sub")
        return subject if isinstance(subject, str) and subject else None

    def _tenant(self, claims: Mapping[str, Any]) -> str:
        tenant = claims.get(self.tenant_claim)
        if tenant is None:
            raise AuthError(403, "missing_tenant", f"token has no '{self.tenant_claim}' claim")
        # Surrounding whitespace or control characters would make two spellings of one tenant, or end up in
        # logs verbatim; such a value is refused rather than normalised.
        if (
            not isinstance(tenant, str)
            or not 0 < len(tenant) <= _MAX_TENANT_LENGTH
            or tenant != tenant.strip()
            or not tenant.isprintable()
        ):
            raise AuthError(
                403,
                "missing_tenant",
                f"token claim '{self.tenant_claim}' must be a string of 1-{_MAX_TENANT_LENGTH} characters",
            )
        return tenant
