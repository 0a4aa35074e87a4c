"""Bearer token verification (SPEC section 4).

Everything a client controls is checked before it is used: the header's length before parsing, the ``alg``
and ``kid`` before a key lookup, and the claims only after the signature holds. Verification itself is a
few hundred microseconds of CPU, so it runs on the event loop; only key fetching leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from sentinel._core._shared import MAX_TENANT_ID as _MAX_TENANT_LENGTH
from sentinel.security.jwks import KID_PATTERN, SUPPORTED_ALGORITHMS, JwksCache

__all__ = ["AuthError", "Principal", "TokenVerifier", "require_role"]

# Header parameters that would make the token choose its own key (RFC 8725 section 3.10 and RFC 7515
# 4.1.2-4.1.5). They are never followed; a token carrying one of the fetchable ones is refused outright
# because a legitimate issuer using a JWKS has no reason to send them. x5c is merely ignored: some
# providers include the certificate chain, and the key is still taken only from the JWKS.
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk")


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
    """A request is not authenticated (401) or not allowed (403).

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
        """The ``WWW-Authenticate`` value for a 401 (RFC 6750 section 3), or None for a 403."""
        if self.status != 401:
            return None
        if self.code == "missing_token":
            # RFC 6750 section 3.1: no error code when the request carried no credentials at all.
            return "Bearer"
        error = "invalid_request" if self.code in {"invalid_request", "token_too_large"} else "invalid_token"
        description = self.detail.replace("\\", "").replace('"', "'")
        return f'Bearer error="{error}", error_description="{description}"'

    def __repr__(self) -> str:
        return f"AuthError(status={self.status}, code={self.code!r}, detail={self.detail!r})"


def _unauthorized(code: str, detail: str) -> AuthError:
    return AuthError(401, code, detail)


def require_role(principal: Principal, role: str) -> None:
    """Raise 403 ``missing_role`` unless the principal holds ``role``."""
    if not principal.has_role(role):
        raise AuthError(403, "missing_role", f"token lacks the required role '{role}'")


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
    ) -> None:
        if not issuer or not audience or not tenant_claim:
            raise ValueError("TokenVerifier needs an issuer, an audience and a tenant claim name")
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.tenant_claim = tenant_claim
        self.leeway = leeway
        self.max_token_bytes = max_token_bytes

    async def start(self) -> None:
        await self.jwks.start()

    async def close(self) -> None:
        await self.jwks.close()

    def ready(self) -> bool:
        return self.jwks.ready()

    async def verify(self, authorization: str | None) -> Principal:
        token = self._bearer_token(authorization)
        alg, kid = self._checked_header(token)
        key = await self.jwks.get(kid, alg)
        if key is None:
            raise _unauthorized("unknown_key", "token is signed by an unknown key")
        claims = self._decode(token, key)
        exp = claims.get("exp")
        return Principal(
            subject=self._subject(claims),
            tenant=self._tenant(claims),
            roles=_roles(claims),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
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
        except jwt.PyJWTError:
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
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("expired", "token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("not_yet_valid", "token is not valid yet") from None
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
        except jwt.PyJWTError:
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
