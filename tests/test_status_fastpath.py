"""The ``GET /status`` fast path (``sentinel.api.controllers.status``) answers exactly as a normal Litestar
route would: status, headers and body, for found and missing processes, every authentication failure,
HEAD, OPTIONS and other methods.

The normal route is served by ``status_reference_app`` (the same app, the ASGI mount replaced by an
ordinary ``@get`` route), on its own Granian server over the same SQLite file and identity provider as a
real ``sentinel serve``; every request is sent to both and the answers compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from apiserver import ApiServer, assert_problem, event, free_port, unique
from helpers import wait_for
from jwks_server import JwksServer, SigningKey

pytestmark = pytest.mark.slow

INGEST = "sentinel-ingest"
# Headers that legitimately differ between two answers to the same request.
VOLATILE = {"date"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

Answer = tuple[int, list[tuple[str, str]], bytes]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.rsa(kid="fastpath")


@pytest.fixture(scope="module")
def idp(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key]) as server:
        yield server


@pytest.fixture(scope="module")
def fast(idp: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("fastpath") / "data", idp=idp) as server:
        yield server


@pytest.fixture(scope="module")
def reference(fast: ApiServer) -> Iterator[str]:
    """The reference app on Granian, over the fast server's data directory; yields its base URL."""
    port = free_port()
    env = {**fast.env, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    log_path = fast.data_dir.parent / f"reference-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--http",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
        "status_reference_app:create_app",
    ]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=fast.data_dir.parent, stdout=log, stderr=subprocess.STDOUT)
    try:

        def up() -> bool:
            assert proc.poll() is None, f"the reference server exited:\n{log_path.read_text()}"
            try:
                return httpx.get(base_url + "/health", timeout=2, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(up, START_TIMEOUT, "the reference server to answer /health")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}:\n{log_path.read_text()}") from None
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ask(base_url: str, method: str, path: str, headers: list[tuple[str, str]]) -> Answer:
    with httpx.Client(base_url=base_url, timeout=15, trust_env=False) as client:
        response = client.request(method, path, headers=headers)
    kept = sorted((name, value) for name, value in response.headers.multi_items() if name not in VOLATILE)
    return response.status_code, kept, response.content


@pytest.fixture(scope="module")
def tokens(idp: JwksServer, key: SigningKey) -> dict[str, str]:
    return {
        "acme": key.sign(idp.claims(tenant_id="acme-fp", roles=[INGEST])),
        "globex": key.sign(idp.claims(tenant_id="globex-fp", roles=[INGEST])),
        "no-tenant": key.sign(idp.claims(roles=[INGEST])),
        "other-audience": key.sign(idp.claims(tenant_id="acme-fp", audience="another-service")),
        "expired": key.sign(idp.claims(tenant_id="acme-fp", exp=1_000_000)),
        "forged": key.sign(idp.claims(tenant_id="acme-fp"))[:-4] + "AAAA",
    }


@pytest.fixture(scope="module")
def processes(fast: ApiServer, tokens: dict[str, str]) -> dict[str, str]:
    """Processes of both tenants, ingested by the fast server's consumer: name -> process id."""
    ids = {
        "plain": unique("fp"),
        "slashes": unique("fp/job") + "/a//b/",
        "unicode": unique("fp-tâche") + " é",
        "other-tenant": unique("fp-globex"),
    }
    for name, process_id in ids.items():
        tenant = "globex" if name == "other-tenant" else "acme"
        body = [
            event("STARTED", process_id, process_name="fast path", metadata={"k": [1, 2]}),
            event("PROGRESS", process_id, percent=40.5, step="half way"),
        ]
        with fast.client(tokens[tenant]) as http:
            assert http.post("/events", json=body).status_code == 202
    with fast.client(tokens["acme"]) as http, fast.client(tokens["globex"]) as other:
        for name, process_id in ids.items():
            client = other if name == "other-tenant" else http
            path = "/status/" + quote(process_id, safe="/")
            wait_for(lambda c=client, p=path: c.get(p).status_code == 200, 60, f"{name} to be ingested")
    return ids


def cases(processes: dict[str, str], tokens: dict[str, str]) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(name, method, path, headers) of every request compared."""

    def bearer(token: str) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {token}")]

    acme = bearer(tokens["acme"])
    plain = "/status/" + quote(processes["plain"])
    out = [
        ("found", "GET", plain, acme),
        ("found with a query string", "GET", plain + "?verbose=1", acme),
        ("slashes as sent", "GET", "/status/" + quote(processes["slashes"]), acme),
        ("slashes as %2F", "GET", "/status/" + quote(processes["slashes"], safe=""), acme),
        ("unicode", "GET", "/status/" + quote(processes["unicode"]), acme),
        ("missing", "GET", "/status/" + unique("fp-none"), acme),
        ("another tenant's", "GET", "/status/" + quote(processes["other-tenant"]), acme),
        ("not UTF-8", "GET", "/status/%FF%FE", acme),
        ("no token", "GET", plain, []),
        ("not a bearer token", "GET", plain, [("Authorization", "Basic dXNlcjpwdw==")]),
        ("garbage token", "GET", plain, bearer("garbage")),
        ("forged signature", "GET", plain, bearer(tokens["forged"])),
        ("expired", "GET", plain, bearer(tokens["expired"])),
        ("other audience", "GET", plain, bearer(tokens["other-audience"])),
        ("no tenant claim", "GET", plain, bearer(tokens["no-tenant"])),
        ("two Authorization headers", "GET", plain, acme + acme),
        ("HEAD found", "HEAD", plain, acme),
        ("HEAD missing", "HEAD", "/status/" + unique("fp-none"), acme),
        ("HEAD no token", "HEAD", plain, []),
        ("OPTIONS", "OPTIONS", plain, acme),
        ("OPTIONS without a token", "OPTIONS", plain, []),
        ("not under /status/", "GET", "/statusx", acme),
        ("/status alone", "GET", "/status", acme),
    ]
    out += [(f"{method} not allowed", method, plain, acme) for method in ("POST", "PUT", "PATCH", "DELETE")]
    return out


# Ids that Litestar's router cannot route to a path parameter (it drops the trailing slashes of
# '/status/' and '/status//'): the fast path answers them as any id no process of the tenant has, after
# authentication, as tests/test_api.py requires. (path, headers, the case whose answer it must equal).
UNROUTABLE = [
    ("/status/", "acme", "missing"),
    ("/status/?x=1", "acme", "missing"),
    ("/status//", "acme", "missing"),
    ("/status/%2F", "acme", "missing"),
    ("/status/", None, "no token"),
]


def test_fast_path_answers_as_a_litestar_route(
    fast: ApiServer, reference: str, processes: dict[str, str], tokens: dict[str, str]
) -> None:
    answers: dict[str, Answer] = {}
    for name, method, path, headers in cases(processes, tokens):
        ours = ask(fast.base_url, method, path, headers)
        litestar = ask(reference, method, path, headers)
        assert ours == litestar, f"{name}: {method} {path}\n fast path: {ours}\n Litestar:  {litestar}"
        answers[name] = ours
    for path, tenant, like in UNROUTABLE:
        headers = [("Authorization", f"Bearer {tokens[tenant]}")] if tenant else []
        assert ask(fast.base_url, "GET", path, headers) == answers[like], f"GET {path} is not answered as {like!r}"

    # The comparison covered every kind of answer, not only errors.
    expected = {
        "found": 200,
        "slashes as sent": 200,
        "slashes as %2F": 200,
        "unicode": 200,
        "missing": 404,
        "another tenant's": 404,
        "not UTF-8": 404,
        "no token": 401,
        "garbage token": 401,
        "expired": 401,
        "no tenant claim": 403,
        "two Authorization headers": 400,
        "HEAD found": 200,
        "OPTIONS": 204,
        "POST not allowed": 405,
        "/status alone": 404,
    }
    assert {name: answers[name][0] for name in expected} == expected
    found = httpx.Response(200, headers=answers["found"][1], content=answers["found"][2]).json()
    assert found["process_id"] == processes["plain"]
    assert found["progress_percent"] == 40.5
    head = dict(answers["HEAD found"][1])
    assert answers["HEAD found"][2] == b""
    assert head["content-length"] == str(len(answers["found"][2]))
    assert dict(answers["OPTIONS"][1])["allow"] == "GET, HEAD, OPTIONS"
    assert dict(answers["POST not allowed"][1])["allow"] == "GET, HEAD, OPTIONS"
    assert "www-authenticate" in dict(answers["no token"][1])
    for name, status, code in (("missing", 404, "not_found"), ("no tenant claim", 403, None)):
        assert_problem(httpx.Response(status, headers=answers[name][1], content=answers[name][2]), status, code)
