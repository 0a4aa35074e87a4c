"""Authentication of the HTTP API (SPEC section 4) against a real ``sentinel serve`` and a loopback identity
provider: accepted tokens, every classic token attack, roles, key rotation, the JWKS fetch rate limit, an
identity provider outage, dev mode and the refusal to start without an issuer.

The module's server has one HTTP worker so JWKS fetch counts are exact. Its JWKS cache refetches on an
unknown ``kid`` at most every 30 s, counted from its first fetch at start-up; the rotation test, last in
the file, waits for that window and uses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import (
    ApiServer,
    assert_problem,
    event,
    free_port,
    sentinel_run,
    server_env,
    unique,
    wait_for,
)
from jwks_server import JwksServer, SigningKey

from sentinel.security import DevAuthority

INGEST = "sentinel-ingest"
LEEWAY = 30


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa(kid="auth-rsa")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec(kid="auth-ec")


@pytest.fixture(scope="module")
def idp(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([rsa_key, ec_key]) as server:
        yield server


@pytest.fixture(scope="module")
def attacker() -> Iterator[JwksServer]:
    """Where a hostile token's jku/x5u points: it must never be asked for anything."""
    with JwksServer([SigningKey.ec(kid="evil")], realm="evil") as server:
        yield server


@pytest.fixture(scope="module")
def api(idp: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("auth") / "data", idp=idp, workers=1) as server:
        yield server


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client(timeout=15) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


def hs256(secret: bytes, signing_input: str) -> str:
    return b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def assert_unauthorized(answer: httpx.Response, token: str | None = None) -> dict[str, Any]:
    problem = assert_problem(answer, 401)
    challenge = answer.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer"), answer.headers
    if token:
        assert token not in answer.text
        assert token not in challenge
    return problem


# -- accepted tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_valid_tokens_are_accepted(
    which: str, http: httpx.Client, idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    key = rsa_key if which == "rsa" else ec_key
    tenant = unique("tenant")
    token = key.sign(idp.claims(tenant_id=tenant, roles=[INGEST]))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == ("RS256" if which == "rsa" else "ES256")
    process_id = unique("auth")
    answer = http.post("/events", json=[event("STARTED", process_id)], headers=bearer(token))
    assert answer.status_code == 202, answer.text

    def visible() -> bool:
        return http.get(f"/status/{process_id}", headers=bearer(token)).status_code == 200

    wait_for(visible, 10, "the event to be visible")
    listed = http.get("/processes", headers=bearer(token)).json()["items"]
    assert [(row["process_id"], row["tenant_id"]) for row in listed] == [(process_id, tenant)]


def test_audience_may_be_a_list_and_expiry_has_leeway(http: httpx.Client, idp: JwksServer, rsa_key: SigningKey) -> None:
    listed = rsa_key.sign(idp.claims(tenant_id="t-aud", audience=["other", "sentinel"]))
    assert http.get("/processes", headers=bearer(listed)).status_code == 200
    now = int(time.time())
    just_expired = rsa_key.sign(idp.claims(tenant_id="t-aud", exp=now - 10))  # within the 30 s leeway
    assert http.get("/processes", headers=bearer(just_expired)).status_code == 200
    long_expired = rsa_key.sign(idp.claims(tenant_id="t-aud", exp=now - LEEWAY - 15))
    problem = assert_unauthorized(http.get("/processes", headers=bearer(long_expired)), long_expired)
    assert "expired" in problem["detail"]


def test_missing_token_is_401_with_a_bare_bearer_challenge(http: httpx.Client) -> None:
    for path in ("/processes", "/status/x", "/logs/x"):
        answer = http.get(path)
        assert_unauthorized(answer)
        assert answer.headers["www-authenticate"] == "Bearer"
    assert_unauthorized(http.post("/events", json=[]))


@pytest.fixture(scope="module")
def short_lived(idp: JwksServer, rsa_key: SigningKey) -> tuple[str, float]:
    """A token that expires a second after the module starts, and its exp (seconds, a float)."""
    exp = time.time() + 1.25
    return rsa_key.sign(idp.claims(tenant_id="t-short", exp=exp)), exp


def test_short_lived_token_is_accepted_within_leeway(http: httpx.Client, short_lived: tuple[str, float]) -> None:
    """Accepted (and so cached) now; ``test_the_token_cache_ends_at_exp_plus_leeway`` at the end of the
    module checks that the cache lets it go once exp + leeway has passed."""
    token, _ = short_lived
    for _ in range(3):
        assert http.get("/processes", headers=bearer(token)).status_code == 200


# -- token attacks ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attacks(idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey, attacker: JwksServer) -> dict[str, str]:
    """Hostile or broken tokens by name, each aimed at the module's server (valid for 5 minutes)."""
    rsa, ec = rsa_key, ec_key
    claims = idp.claims(tenant_id="victim", roles=[INGEST])
    now = int(time.time())
    stranger = SigningKey.rsa(kid=rsa.kid)  # claims the published kid, but is not the published key
    valid = rsa.sign(claims)
    head, payload, signature = valid.split(".")
    forged_payload = b64url(json.dumps({**claims, "tenant_id": "someone-else"}).encode())
    hs_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": rsa.kid}, claims)
    hs_pem = hs_input + "." + hs256(rsa.public_pem(), hs_input)
    ec_hs_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": ec.kid}, claims)
    ec_hs = ec_hs_input + "." + hs256(ec.public_pem(), ec_hs_input)
    return {
        "alg-none": unsigned({"alg": "none", "typ": "JWT", "kid": rsa.kid}, claims) + ".",
        "alg-None": unsigned({"alg": "None", "kid": rsa.kid}, claims) + ".",
        "alg-none-with-signature": unsigned({"alg": "none", "kid": rsa.kid}, claims) + "." + signature,
        "hs256-with-rsa-public-pem": hs_pem,
        "hs256-with-ec-public-pem": ec_hs,
        "rs256-header-on-ec-kid": unsigned({"alg": "RS256", "kid": ec.kid}, claims) + "." + signature,
        "expired-beyond-leeway": rsa.sign(idp.claims(tenant_id="victim", exp=now - LEEWAY - 30)),
        "not-yet-valid": rsa.sign(idp.claims(tenant_id="victim", nbf=now + 3600)),
        "wrong-issuer": rsa.sign(idp.claims(tenant_id="victim", iss="https://idp.example.invalid/realms/x")),
        "issuer-with-trailing-slash": rsa.sign(idp.claims(tenant_id="victim", iss=idp.issuer + "/")),
        "audience-missing": rsa.sign(idp.claims(tenant_id="victim", audience=None)),  # type: ignore[arg-type]
        "audience-other": rsa.sign(idp.claims(tenant_id="victim", audience="another-service")),
        "audience-list-without-ours": rsa.sign(idp.claims(tenant_id="victim", audience=["a", "b"])),
        "no-exp": rsa.sign(idp.claims(tenant_id="victim", exp=None)),
        "jku-header": rsa.sign(claims, jku=attacker.jwks_uri),
        "x5u-header": rsa.sign(claims, x5u=attacker.base_url + "/cert.pem"),
        "jwk-header": stranger.sign(claims, jwk=stranger.public_jwk()),
        "kid-path-traversal": rsa.sign(claims, kid="../../etc/passwd"),
        "kid-sql-injection": rsa.sign(claims, kid="' OR 1=1 --"),
        "kid-missing": rsa.sign(claims, kid=None),
        "signed-by-another-key-same-kid": stranger.sign(claims),
        "payload-swapped": f"{head}.{forged_payload}.{signature}",
        "signature-stripped": f"{head}.{payload}.",
        "not-a-jwt": "not-a-jwt",
        "two-segments": f"{head}.{payload}",
        "garbage-segments": "a.b.c",
    }


ATTACKS = [
    "alg-none",
    "alg-None",
    "alg-none-with-signature",
    "hs256-with-rsa-public-pem",
    "hs256-with-ec-public-pem",
    "rs256-header-on-ec-kid",
    "expired-beyond-leeway",
    "not-yet-valid",
    "wrong-issuer",
    "issuer-with-trailing-slash",
    "audience-missing",
    "audience-other",
    "audience-list-without-ours",
    "no-exp",
    "jku-header",
    "x5u-header",
    "jwk-header",
    "kid-path-traversal",
    "kid-sql-injection",
    "kid-missing",
    "signed-by-another-key-same-kid",
    "payload-swapped",
    "signature-stripped",
    "not-a-jwt",
    "two-segments",
    "garbage-segments",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_token_attack_is_401(attack: str, http: httpx.Client, attacks: dict[str, str]) -> None:
    token = attacks[attack]
    for answer in (
        http.get("/processes", headers=bearer(token)),
        http.get("/status/anything", headers=bearer(token)),
        http.post("/events", json=[event("STARTED", "p")], headers=bearer(token)),
    ):
        assert_unauthorized(answer, token)


def test_hostile_key_urls_are_never_fetched(
    http: httpx.Client, idp: JwksServer, attacker: JwksServer, attacks: dict[str, str]
) -> None:
    for name in ("jku-header", "x5u-header", "jwk-header"):
        problem = assert_unauthorized(http.get("/processes", headers=bearer(attacks[name])))
        assert "jku" in problem["detail"]
    assert attacker.total_requests == 0
    # The real identity provider was only ever asked for its JWKS (and discovery, if used).
    assert idp.total_requests == idp.jwks_requests + idp.discovery_requests


@pytest.mark.parametrize("size", [8193, 20_000, 100_000])
def test_oversized_authorization_header_is_401(size: int, http: httpx.Client) -> None:
    token = "a" * size
    problem = assert_unauthorized(http.get("/processes", headers=bearer(token)))
    assert "8192" in problem["detail"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  x", "Token abc.def.ghi", "bearer"])
def test_malformed_authorization_header_is_401(header: str, http: httpx.Client) -> None:
    assert_unauthorized(http.get("/processes", headers={"Authorization": header}))


# JSON texts for a time claim that is not a NumericDate in 0..9999-12-31 (see tests/test_security.py for
# every kind); "{future}" is five minutes from now.
BAD_TIME_CLAIMS = [
    ("exp", "1" + "0" * 400),
    ("exp", '"1767225600"'),
    ("exp", '"{future}"'),
    ("exp", "1e400"),
    ("exp", "-1e400"),
    ("exp", "NaN"),
    ("exp", "Infinity"),
    ("exp", "true"),
    ("exp", "[{future}]"),
    ("exp", '{{"at": {future}}}'),
    ("exp", "253402300800"),
    ("nbf", "1" + "0" * 400),
    ("nbf", '"0"'),
    ("nbf", "1e400"),
    ("nbf", "-1"),
    ("nbf", "null"),
    ("iat", "-1" + "0" * 400),
    ("iat", '"{future}"'),
    ("iat", "-Infinity"),
    ("iat", "false"),
]


@pytest.mark.parametrize(("claim", "raw"), BAD_TIME_CLAIMS)
def test_time_claims_that_are_not_numeric_dates_are_401(
    claim: str, raw: str, http: httpx.Client, idp: JwksServer, rsa_key: SigningKey
) -> None:
    future = int(time.time()) + 300
    text = json.dumps({**idp.claims(tenant_id="t-time", roles=[INGEST]), claim: "@@RAW@@"})
    token = rsa_key.sign_raw(text.replace('"@@RAW@@"', raw.format(future=future)))
    for answer in (
        http.get("/processes", headers=bearer(token)),
        http.get("/status/anything", headers=bearer(token)),
        http.get("/logs/anything", headers=bearer(token)),
        http.get("/logs/anything", params={"follow": "true"}, headers=bearer(token)),
        http.post("/events", json=[event("STARTED", "p")], headers={**bearer(token), "Connection": "close"}),
    ):
        problem = assert_unauthorized(answer, token)
        assert problem["code"] == "invalid_token", problem
        assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert f"'{claim}'" in problem["detail"], problem


# Signed tokens whose claims a client controls in ways no issuer would produce (each given the real
# issuer's URL): every one must be refused with 401 on every route, never answered with a 5xx.
HOSTILE_CLAIMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "aud-number": lambda issuer: {"aud": 123},
    "aud-object": lambda issuer: {"aud": {"sentinel": True}},
    "aud-list-with-a-number": lambda issuer: {"aud": ["sentinel", 5]},
    "aud-null": lambda issuer: {"aud": None},
    "aud-true": lambda issuer: {"aud": True},
    "iss-number": lambda issuer: {"iss": 1e400},
    "iss-list": lambda issuer: {"iss": [issuer]},
    "iss-object": lambda issuer: {"iss": {"url": issuer}},
    "sub-number": lambda issuer: {"sub": 10**400},
    "sub-object": lambda issuer: {"sub": {"id": "u"}},
    "jti-list": lambda issuer: {"jti": ["a"]},
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_CLAIMS))
def test_hostile_claims_are_401(kind: str, http: httpx.Client, idp: JwksServer, ec_key: SigningKey) -> None:
    claims = {**idp.claims(tenant_id="t-hostile", roles=[INGEST]), **HOSTILE_CLAIMS[kind](idp.issuer)}
    token = ec_key.sign_raw(json.dumps(claims))
    for answer in (
        http.get("/processes", headers=bearer(token)),
        http.get("/status/anything", headers=bearer(token)),
        http.get("/logs/anything", params={"follow": "true"}, headers=bearer(token)),
        http.post("/events", json=[event("STARTED", "p")], headers={**bearer(token), "Connection": "close"}),
    ):
        assert_unauthorized(answer, token)


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xe9t\xe9.a.b",  # latin-1 bytes: not a token
        b"Bearer \xff\xfe\xfd",
        b"Bearer a.b.c\xa0",
        b"Bearer " + b"." * 5000,
        b"Bearer eyJ9.eyJ9.eyJ9",
        b"Bearer " + b"A" * 8000 + b"..",
        b"BEARER\tx.y.z",
        b"Bearer  " + b" " * 100 + b"x.y.z",
    ],
)
def test_malformed_authorization_bytes_are_401(authorization: bytes, http: httpx.Client) -> None:
    for path in ("/processes", "/status/anything", "/logs/anything"):
        answer = http.get(path, headers={"Authorization": authorization})  # type: ignore[dict-item]
        assert_unauthorized(answer)


def test_two_authorization_headers_are_400_and_nothing_is_stored(
    http: httpx.Client, idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    tenant_a, tenant_b = unique("tenant-a"), unique("tenant-b")
    token_a = rsa_key.sign(idp.claims(tenant_id=tenant_a, roles=[INGEST]))
    token_b = ec_key.sign(idp.claims(tenant_id=tenant_b, roles=[INGEST]))
    process_id = unique("dup")
    pairs = [(token_a, token_b), (token_b, token_a), (token_a, token_a), (token_a, "garbage")]
    for first, second in pairs:
        headers = [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]
        for answer in (
            http.post("/events", json=[event("STARTED", process_id)], headers=[*headers, ("Connection", "close")]),
            http.get(f"/status/{process_id}", headers=headers),
            http.get("/processes", headers=headers),
            http.get(f"/logs/{process_id}", headers=headers),
            http.get(f"/logs/{process_id}", params={"follow": "true"}, headers=headers),
            http.get(f"/logs/{process_id}", headers=[*headers, ("Accept", "text/event-stream")]),
        ):
            problem = assert_problem(answer, 400, "duplicate_authorization")
            assert "Authorization" in problem["detail"]
            assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
            assert first not in answer.text
            assert second not in answer.text
    # Nothing was queued: an event posted afterwards is stored, the refused one is not, for either tenant.
    marker = unique("after")
    assert http.post("/events", json=[event("STARTED", marker)], headers=bearer(token_a)).status_code == 202
    wait_for(lambda: http.get(f"/status/{marker}", headers=bearer(token_a)).status_code == 200, 10, "the marker")
    for token in (token_a, token_b):
        assert_problem(http.get(f"/status/{process_id}", headers=bearer(token)), 404)


# -- tenant and roles -------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", [None, "", " padded ", 42, ["a"], "x" * 51, "tab\there"])
def test_token_without_a_usable_tenant_is_403(
    tenant: Any, http: httpx.Client, idp: JwksServer, ec_key: SigningKey
) -> None:
    claims = idp.claims(roles=[INGEST])
    if tenant is not None:
        claims["tenant_id"] = tenant
    token = ec_key.sign(claims)
    for answer in (
        http.get("/processes", headers=bearer(token)),
        http.post("/events", json=[event("STARTED", "p")], headers=bearer(token)),
    ):
        problem = assert_problem(answer, 403)
        assert "tenant_id" in problem["detail"]
        assert "www-authenticate" not in answer.headers


@pytest.mark.parametrize(
    ("role_claims", "may_post"),
    [
        ({"roles": [INGEST]}, True),
        ({"realm_access": {"roles": [INGEST, "offline_access"]}}, True),
        ({"roles": ["viewer"], "realm_access": {"roles": [INGEST]}}, True),
        ({"roles": ["viewer"]}, False),
        ({"realm_access": {"roles": ["viewer"]}}, False),
        ({"roles": INGEST}, False),  # a string is not a list of roles
        ({"resource_access": {"sentinel": {"roles": [INGEST]}}}, False),
        ({}, False),
    ],
)
def test_roles_from_roles_or_realm_access(
    role_claims: dict[str, Any], may_post: bool, http: httpx.Client, idp: JwksServer, rsa_key: SigningKey
) -> None:
    token = rsa_key.sign(idp.claims(tenant_id=unique("tenant"), **role_claims))
    # Connection: close, as a 403 may come before the body is read and the connection then be dropped.
    answer = http.post(
        "/events", json=[event("STARTED", unique("role"))], headers={**bearer(token), "Connection": "close"}
    )
    if may_post:
        assert answer.status_code == 202, answer.text
    else:
        problem = assert_problem(answer, 403)
        assert INGEST in problem["detail"]
    assert http.get("/processes", headers=bearer(token)).status_code == 200  # reading needs no role


# -- the identity provider ---------------------------------------------------------------------------


def test_identity_provider_down_keeps_cached_keys(
    api: ApiServer, idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    idp.take_down("hang")
    try:
        with api.client(timeout=15) as http:
            for key in (rsa_key, ec_key):
                fresh = key.sign(idp.claims(tenant_id=unique("tenant")))  # never seen: not in any token cache
                assert http.get("/processes", headers=bearer(fresh)).status_code == 200
            unknown = SigningKey.ec(kid=f"gone-{secrets.token_hex(4)}")
            token = unknown.sign(idp.claims(tenant_id="t"))
            # Refused, not hung: the client's 15 s timeout would fail this test first.
            problem = assert_unauthorized(http.get("/processes", headers=bearer(token)), token)
            assert "unknown key" in problem["detail"]
            ready = http.get("/ready")
            assert ready.status_code == 200, ready.text  # cached keys still count as loaded
    finally:
        idp.bring_up()


def test_discovery_and_configured_claim_names(rsa_key: SigningKey, tmp_path: Path) -> None:
    """Without OAUTH2_JWK_SET_URI the keys come from OIDC discovery on the issuer; the tenant claim and
    the ingest role are the configured ones."""
    with JwksServer([rsa_key], realm="discovered") as provider:
        server = ApiServer(
            tmp_path / "data",
            idp=provider,
            discovery=True,
            env={"SENTINEL_TENANT_CLAIM": "org", "SENTINEL_INGEST_ROLE": "writer"},
        )
        assert "OAUTH2_JWK_SET_URI" not in server.env
        server.start()
        try:
            assert provider.discovery_requests >= 1
            assert provider.jwks_requests >= 1
            writer = rsa_key.sign(provider.claims(org="org-1", roles=["writer"]))
            with server.client(writer) as http:
                process_id = unique("disc")
                assert http.post("/events", json=[event("STARTED", process_id)]).status_code == 202
                wait_for(lambda: http.get(f"/status/{process_id}").status_code == 200, 10, "the event")
                assert http.get(f"/status/{process_id}").json()["tenant_id"] == "org-1"
            default_names = rsa_key.sign(provider.claims(tenant_id="org-1", roles=[INGEST]))
            with server.client(default_names) as http:
                problem = assert_problem(http.get("/processes"), 403)
                assert "'org'" in problem["detail"]
            reader = rsa_key.sign(provider.claims(org="org-1", roles=[INGEST]))
            with server.client(reader, headers={"Connection": "close"}) as http:
                problem = assert_problem(http.post("/events", json=[event("STARTED", "x")]), 403)
                assert "writer" in problem["detail"]
            other = rsa_key.sign(provider.claims(org="org-1", iss=provider.base_url + "/realms/other"))
            with server.client(other) as http:
                assert_unauthorized(http.get("/processes"), other)
        except BaseException:
            server.kill()
            raise
        server.stop()


# -- dev mode and start-up refusals -----------------------------------------------------------------


def test_dev_mode_end_to_end(tmp_path: Path) -> None:
    server = ApiServer(tmp_path / "data", dev=True)
    assert not any(name.startswith("OAUTH2_") for name in server.env)
    server.start()
    try:
        assert "DEV MODE" in server.output()
        tenant = unique("dev")
        token = server.dev_token(tenant)
        reader = server.dev_token(tenant, "viewer")
        neighbour = server.dev_token(unique("dev"))
        process_id = unique("dev-proc")
        with server.client(token) as http:
            answer = http.post("/events", json=[event("STARTED", process_id), event("LOG", process_id)])
            assert answer.status_code == 202, answer.text
            wait_for(lambda: http.get(f"/status/{process_id}").status_code == 200, 10, "the dev event")
            assert http.get(f"/logs/{process_id}").json()["items"][0]["message"] == "a log line"
        with server.client(reader) as http:
            assert http.get(f"/status/{process_id}").json()["tenant_id"] == tenant
            assert_problem(http.post("/events", json=[event("STARTED", process_id)]), 403)
        with server.client(neighbour) as http:
            assert_problem(http.get(f"/status/{process_id}"), 404)
        # A token minted against another data directory (another dev key) is refused.
        DevAuthority(tmp_path / "elsewhere")  # another dev server's key (sentinel token never makes one)
        elsewhere = sentinel_run("token", "--tenant", tenant, env=server_env(tmp_path / "elsewhere"))
        assert elsewhere.returncode == 0, elsewhere.stderr
        with server.client(elsewhere.stdout.strip()) as http:
            assert_unauthorized(http.get("/processes"))
    except BaseException:
        server.kill()
        raise
    server.stop()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "OAUTH2_ISSUER"),
        ({"OAUTH2_AUDIENCE": "sentinel"}, "OAUTH2_ISSUER"),
        ({"OAUTH2_ISSUER": "http://127.0.0.1:9/realms/x"}, "OAUTH2_AUDIENCE"),
        ({"OAUTH2_ISSUER": "ftp://idp/realms/x", "OAUTH2_AUDIENCE": "sentinel"}, "OAUTH2_ISSUER"),
        ({"SENTINEL_DEV_MODE": "maybe"}, "SENTINEL_DEV_MODE"),
        ({"SENTINEL_MAX_BODY_BYTES": "lots"}, "SENTINEL_MAX_BODY_BYTES"),
    ],
)
def test_serve_refuses_to_start_without_an_identity_provider(
    env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    port = free_port()
    done = sentinel_run("serve", "--host", "127.0.0.1", "--port", str(port), env=server_env(tmp_path, env), timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert "Traceback" not in done.stderr
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False, timeout=2) as http:
        http.get(f"http://127.0.0.1:{port}/health")


# -- key rotation and the refetch rate limit (last: they wait for the 30 s window) ------------------


def _burst(http: httpx.Client, tokens: list[str]) -> list[int]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(lambda token: http.get("/processes", headers=bearer(token)).status_code, tokens))


def _random_kid_tokens(idp: JwksServer, key: SigningKey, count: int) -> list[str]:
    claims = idp.claims(tenant_id="flood")
    return [key.sign(claims, kid=f"random-{secrets.token_hex(8)}") for _ in range(count)]


def test_key_rotation_and_unknown_kid_rate_limit(
    api: ApiServer, idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    """The provider publishes a new key next to the old ones; tokens signed with it are accepted once the
    cache refetches (on an unknown kid, at most once per 30 s), and the old keys stay valid. Meanwhile
    hundreds of unknown-kid requests cost at most a couple of fetches."""
    new_key = SigningKey.rsa(kid=f"rotated-{secrets.token_hex(4)}")
    idp.set_keys([rsa_key, ec_key, new_key])
    idp.reset_counts()
    new_token = new_key.sign(idp.claims(tenant_id="t-rot", roles=[INGEST]))
    statuses: list[int] = []
    with api.client(timeout=15) as http:

        def accepted() -> bool:
            noise = _random_kid_tokens(idp, ec_key, 20)
            answers = _burst(http, [*noise, new_token])
            statuses.extend(answers[:-1])
            return answers[-1] == 200

        wait_for(accepted, 75, "the rotated key to be accepted", interval=0.25)
        assert set(statuses) == {401}
        assert len(statuses) >= 20
        assert 1 <= idp.jwks_requests <= 2, (idp.jwks_requests, len(statuses))
        for key in (rsa_key, ec_key, new_key):  # overlap: old and new keys all verify
            fresh = key.sign(idp.claims(tenant_id=unique("tenant"), roles=[INGEST]))
            answer = http.post("/events", json=[event("HEARTBEAT", unique("rot"))], headers=bearer(fresh))
            assert answer.status_code == 202, answer.text


def test_flood_of_random_kids_costs_at_most_a_fetch_or_two(api: ApiServer, idp: JwksServer, ec_key: SigningKey) -> None:
    idp.reset_counts()
    with api.client(timeout=15) as http:
        answers = _burst(http, _random_kid_tokens(idp, ec_key, 100))
    assert answers == [401] * 100
    assert idp.jwks_requests <= 2
    assert idp.total_requests == idp.jwks_requests + idp.discovery_requests


def test_the_token_cache_ends_at_exp_plus_leeway(http: httpx.Client, short_lived: tuple[str, float]) -> None:
    """Last in the module, after the 30 s windows above: the token accepted (and cached) at the start is
    refused once its exp plus the 30 s leeway has passed on this machine's clock, which the server shares."""
    token, exp = short_lived
    wait_for(lambda: time.time() > exp + LEEWAY + 0.5, LEEWAY + 60, "exp + leeway to pass", interval=0.1)
    problem = assert_unauthorized(http.get("/processes", headers=bearer(token)), token)
    assert problem["code"] == "expired", problem
