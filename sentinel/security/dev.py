"""Dev mode's own token authority (SPEC section 5): no identity provider, one ES256 key on disk.

The key lives in ``<data_dir>/dev-signing-key.pem`` so that ``sentinel token`` (a separate process) mints
tokens the server accepts. It is created once, owner-only, and published atomically: several server workers
starting together all end up with the same key instead of each writing its own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["DEV_AUDIENCE", "DEV_ISSUER", "DEV_KEY_FILENAME", "DevAuthority"]

log = logging.getLogger(__name__)

DEV_ISSUER = "sentinel-dev"
DEV_AUDIENCE = "sentinel"
DEV_KEY_FILENAME = "dev-signing-key.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(jwk: dict[str, str]) -> str:
    # RFC 7638: the required members only, keys sorted, no whitespace, SHA-256, base64url.
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: expected an EC P-256 private key; delete it to have a new one created")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; it should be mode 0600", path)
    return key


def _create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # Created 0600 from the first byte, never chmod-ed afterwards, so the key is not readable even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() publishes the complete file and fails if another process got there first, in which
            # case its key wins and this one is discarded.
            os.link(temporary, path)
        except FileExistsError:
            return _load_key(path)
        except OSError:
            # Filesystems without hard links: replace() is still atomic, merely last-writer-wins.
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    log.warning("created dev signing key %s", path)
    return key


class DevAuthority:
    """Loads or creates the dev signing key and mints tokens the dev-mode verifier accepts."""

    issuer = DEV_ISSUER
    audience = DEV_AUDIENCE

    def __init__(self, data_dir: Path | str, *, tenant_claim: str = "tenant_id") -> None:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.key_path = directory / DEV_KEY_FILENAME
        self.tenant_claim = tenant_claim
        self._key = _load_key(self.key_path) if self.key_path.exists() else _create_key(self.key_path)
        self._public_jwk = _public_jwk(self._key.public_key())
        self.kid = _thumbprint(self._public_jwk)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def mint(
        self,
        tenant: str,
        roles: Sequence[str] = ("sentinel-ingest",),
        ttl_seconds: int = 3600,
        subject: str = "dev-user",
    ) -> str:
        if not isinstance(tenant, str) or not 0 < len(tenant) <= 50:
            raise ValueError("tenant must be a string of 1-50 characters")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        # A bare string is a Sequence too; without this, "admin" would become five one-letter roles.
        role_list = [roles] if isinstance(roles, str) else list(roles)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            self.tenant_claim: tenant,
            "roles": role_list,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})
