"""A small OpenID provider on loopback for the dashboard's sign-in test: discovery, JWKS, the
authorization endpoint (it signs in at once, as a provider with a live session does), the token
endpoint (authorization_code with a PKCE S256 check, refresh_token), revocation and end-session.

Not a test module. It checks what a real provider would refuse (a wrong verifier, redirect URI or
client, a reused code) and records every request, so the test can assert what the page sent.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jwks_server import SigningKey


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str


@dataclass
class OidcProvider:
    client_id: str
    audience: str
    tenant: str
    roles: tuple[str, ...] = ()
    token_sec: int = 3600
    key: SigningKey = field(default_factory=SigningKey.ec)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    refreshed: int = 0
    revoked: list[str] = field(default_factory=list)
    ended: int = 0
    _codes: dict[str, Grant] = field(default_factory=dict)
    _refresh: set[str] = field(default_factory=set)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.base_url + "/realms/ops"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/certs"

    def __enter__(self) -> OidcProvider:
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider.handle(self, "GET", {})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                provider.handle(self, "POST", parse_qs(self.rfile.read(length).decode()))

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- endpoints ----------------------------------------------------------------------------------

    def handle(self, request: http.server.BaseHTTPRequestHandler, method: str, form: dict[str, list[str]]) -> None:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        self.requests.append((method, parts.path, form or query))
        path = parts.path.removeprefix("/realms/ops")
        if path == "/.well-known/openid-configuration":
            self.json(request, 200, self.discovery())
        elif path == "/certs":
            self.json(request, 200, {"keys": [self.key.public_jwk()]})
        elif path == "/auth" and method == "GET":
            self.authorize(request, {name: values[0] for name, values in query.items()})
        elif path == "/token" and method == "POST":
            self.token(request, {name: values[0] for name, values in form.items()})
        elif path == "/revoke" and method == "POST":
            self.revoked.append(form.get("token", [""])[0])
            self._refresh.discard(form.get("token", [""])[0])
            self.json(request, 200, {})
        elif path == "/logout":
            self.ended += 1
            self.redirect(request, query["post_logout_redirect_uri"][0])
        else:
            self.json(request, 404, {"error": "not_found"})

    def discovery(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/auth",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.jwks_uri,
            "revocation_endpoint": self.issuer + "/revoke",
            "end_session_endpoint": self.issuer + "/logout",
        }

    def authorize(self, request: http.server.BaseHTTPRequestHandler, params: dict[str, str]) -> None:
        if (
            params.get("response_type") != "code"
            or params.get("client_id") != self.client_id
            or params.get("code_challenge_method") != "S256"
            or "openid" not in params.get("scope", "").split()
            or not params.get("state")
            or not params.get("code_challenge")
        ):
            self.json(request, 400, {"error": "invalid_request", "got": params})
            return
        code = secrets.token_urlsafe(16)
        self._codes[code] = Grant(
            self.client_id, params["redirect_uri"], params["code_challenge"], params.get("nonce", "")
        )
        self.redirect(request, f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}")

    def token(self, request: http.server.BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        if form.get("client_id") != self.client_id:
            self.json(request, 401, {"error": "invalid_client"})
            return
        if form.get("grant_type") == "authorization_code":
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if grant is None or grant.redirect_uri != form.get("redirect_uri") or grant.challenge != challenge:
                self.json(request, 400, {"error": "invalid_grant"})
                return
            self.json(request, 200, self.tokens(grant.nonce))
        elif form.get("grant_type") == "refresh_token":
            old = form.get("refresh_token", "")
            if old not in self._refresh:
                self.json(request, 400, {"error": "invalid_grant"})
                return
            self._refresh.discard(old)  # rotated
            self.refreshed += 1
            self.json(request, 200, self.tokens(None))
        else:
            self.json(request, 400, {"error": "unsupported_grant_type"})

    def tokens(self, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "operator-1", "iat": now, "exp": now + self.token_sec}
        access = self.key.sign({**claims, "aud": self.audience, "tenant_id": self.tenant, "roles": list(self.roles)})
        refresh = secrets.token_urlsafe(24)
        self._refresh.add(refresh)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_sec,
            "refresh_token": refresh,
        }
        if nonce is not None:
            answer["id_token"] = self.key.sign({**claims, "aud": self.client_id, "nonce": nonce})
        return answer

    # -- answers --------------------------------------------------------------------------------------

    @staticmethod
    def json(request: http.server.BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(data)))
        request.send_header("access-control-allow-origin", "*")  # the page calls it from another origin
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def redirect(request: http.server.BaseHTTPRequestHandler, location: str) -> None:
        request.send_response(302)
        request.send_header("location", location)
        request.send_header("content-length", "0")
        request.end_headers()
