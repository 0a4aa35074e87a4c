"""Authentication: bearer tokens checked against the identity provider's keys (SPEC section 4)."""

from __future__ import annotations

from collections.abc import Callable

from sentinel.config import Settings, SettingsError
from sentinel.security.dev import DevAuthority
from sentinel.security.jwks import JwksCache, JwksError
from sentinel.security.tokens import AuthError, Principal, TokenVerifier, require_role

__all__ = [
    "AuthError",
    "DevAuthority",
    "JwksCache",
    "JwksError",
    "Principal",
    "TokenVerifier",
    "build_verifier",
    "require_role",
]


def build_verifier(settings: Settings, *, on_fetch: Callable[[bool], None] | None = None) -> TokenVerifier:
    """The verifier the settings call for; the caller awaits its ``start()`` and ``close()``.

    In dev mode the keys are the dev authority's, fixed and local. Otherwise they come from
    ``OAUTH2_JWK_SET_URI`` when set, else from OIDC discovery on ``OAUTH2_ISSUER``; ``on_fetch`` is told
    the outcome of every fetch so metrics can count them.
    """
    if settings.dev_mode:
        authority = DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim)
        return TokenVerifier(
            issuer=authority.issuer,
            audience=authority.audience,
            jwks=JwksCache(static_jwks=authority.jwks()),
            tenant_claim=settings.tenant_claim,
        )
    if settings.oauth2_issuer is None:
        raise SettingsError("OAUTH2_ISSUER: required unless the server runs in dev mode (sentinel serve --dev)")
    if settings.oauth2_audience is None:
        raise SettingsError("OAUTH2_AUDIENCE: required unless the server runs in dev mode (sentinel serve --dev)")
    if settings.oauth2_jwk_set_uri is not None:
        jwks = JwksCache(jwks_uri=settings.oauth2_jwk_set_uri, on_fetch=on_fetch)
    else:
        jwks = JwksCache(issuer=settings.oauth2_issuer, on_fetch=on_fetch)
    return TokenVerifier(
        issuer=settings.oauth2_issuer,
        audience=settings.oauth2_audience,
        jwks=jwks,
        tenant_claim=settings.tenant_claim,
    )
