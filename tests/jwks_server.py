"""A loopback identity provider for tests: JWKS + OIDC discovery served from a thread.

Usage::

    key = SigningKey.rsa()
    with JwksServer([key]) as idp:
        cache = JwksCache(issuer=idp.issuer)       # or JwksCache(jwks_uri=idp.jwks_uri)
        token = key.sign(idp.claims(tenant_id="acme"))
        idp.set_keys([key, SigningKey.ec()])           # rotation
        idp.take_down("503")                            # or "close" / "hang"; bring_up() restores

Only the standard library and ``cryptography``/``PyJWT`` are used, and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["JwksServer", "SigningKey"]

Outage = Literal["503", "close", "hang"]

JWKS_PATH = "/protocol/openid-connect/certs"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """A private key with its kid, able to sign tokens and to describe itself as a public JWK."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        kid: str | None = None,
    ) -> None:
        self.private_key = private_key
        self.alg = "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"
        self.kid = kid or f"{self.alg.lower()}-{secrets.token_hex(6)}"

    @classmethod
    def rsa(cls, kid: str | None = None, key_size: int = 2048) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=key_size), kid)

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid)

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        jwk.update(extra)
        return {name: value for name, value in jwk.items() if value is not None}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: Mapping[str, Any], **headers: Any) -> str:
        """A token over ``claims``; ``headers`` add to the JOSE header (``kid=None`` removes the kid)."""
        merged = {"kid": self.kid, **headers}
        header = {name: value for name, value in merged.items() if value is not None}
        return jwt.encode(dict(claims), self.private_key, algorithm=self.alg, headers=header)

    def sign_raw(self, payload: str, header: str | None = None) -> str:
        """A token over exactly these JSON texts, which need not be JSON ``json.dumps`` would write (``1e400``,
        ``NaN``, 400-digit numbers, anything at all); the header defaults to this key's alg and kid."""
        if header is None:
            header = json.dumps({"alg": self.alg, "typ": "JWT", "kid": self.kid})
        signing_input = f"{_b64url(header.encode())}.{_b64url(payload.encode())}"
        signature = jwt.api_jws.PyJWS().get_algorithm_by_name(self.alg).sign(signing_input.encode(), self.private_key)
        return f"{signing_input}.{_b64url(signature)}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        owner._count(path)
        outage = owner.outage
        if outage == "hang":
            owner._released.wait(timeout=30)
            self.close_connection = True
            return
        if outage == "close":
            self.close_connection = True
            return
        if outage == "503":
            self._send(503, {"error": "temporarily_unavailable"})
            return
        if path == owner.jwks_path and owner.redirect is not None:
            self.send_response(302)
            self.send_header("Location", owner.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == owner.jwks_path:
            self._send(200, owner.jwks_document())
        elif path == owner.discovery_path:
            self._send(200, owner.discovery_document())
        else:
            self._send(404, {"error": "not_found"})

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the default per-request line on stderr; tests read counters instead.
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: JwksServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class JwksServer:
    """Serves a JWKS and an OIDC discovery document on 127.0.0.1 at a free port.

    ``issuer`` is ``http://127.0.0.1:<port>/realms/<realm>`` (Keycloak-shaped, so discovery is tested with
    a path), ``jwks_uri`` hangs below it. Request counts are kept per path; keys can be swapped at any time
    and the server can be taken down in three ways without stopping it.
    """

    def __init__(self, keys: Iterable[SigningKey] = (), *, realm: str = "sentinel") -> None:
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = list(keys)
        self._extra_jwks: list[dict[str, Any]] = []
        self._raw_document: dict[str, Any] | None = None
        self._counts: Counter[str] = Counter()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.realm_path = f"/realms/{realm}"
        self.jwks_path = self.realm_path + JWKS_PATH
        self.discovery_path = self.realm_path + DISCOVERY_SUFFIX
        self.outage: Outage | None = None
        self.discovery_issuer: str | None = None
        # When set, the JWKS path answers 302 to this location.
        self.redirect: str | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> JwksServer:
        if self._server is not None:
            return self
        self._released.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="jwks-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._released.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("JwksServer is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + self.realm_path

    @property
    def jwks_uri(self) -> str:
        return self.base_url + self.jwks_path

    # -- content ----------------------------------------------------------------------------------

    @property
    def keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def set_keys(self, keys: Iterable[SigningKey], *, extra_jwks: Iterable[dict[str, Any]] = ()) -> None:
        """Publish exactly these keys (plus raw ``extra_jwks`` entries, e.g. encryption keys)."""
        with self._lock:
            self._keys = list(keys)
            self._extra_jwks = list(extra_jwks)
            self._raw_document = None

    def set_document(self, document: dict[str, Any]) -> None:
        """Serve ``document`` verbatim at the JWKS path, for malformed-JWKS tests."""
        with self._lock:
            self._raw_document = document

    def jwks_document(self) -> dict[str, Any]:
        with self._lock:
            if self._raw_document is not None:
                return self._raw_document
            return {"keys": [key.public_jwk() for key in self._keys] + self._extra_jwks}

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.issuer + "/protocol/openid-connect/token",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def claims(self, *, audience: str | list[str] = "sentinel", ttl: int = 300, **extra: Any) -> dict[str, Any]:
        """Typical valid claims from this issuer; ``extra`` adds or overrides (``None`` removes)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": "user-1",
            "iat": now,
            "exp": now + ttl,
        }
        claims.update(extra)
        return {name: value for name, value in claims.items() if value is not None}

    # -- outages ----------------------------------------------------------------------------------

    def take_down(self, mode: Outage = "503") -> None:
        """Answer 503, close connections unanswered, or hang until :meth:`bring_up` or :meth:`stop`."""
        self._released.clear()
        self.outage = mode

    def bring_up(self) -> None:
        self.outage = None
        self._released.set()

    # -- counters ---------------------------------------------------------------------------------

    def _count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    @property
    def jwks_requests(self) -> int:
        with self._lock:
            return self._counts[self.jwks_path]

    @property
    def discovery_requests(self) -> int:
        with self._lock:
            return self._counts[self.discovery_path]

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
