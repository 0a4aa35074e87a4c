"""The dashboard in a real browser: Debian's chromium driven by Playwright, against ``sentinel serve --dev``.

Every page a test opens records every request it makes; each test ends by checking that none went to an
address other than the server. Screenshots of each view go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from apiserver import ApiServer, event, sentinel_run, unique
from helpers import wait_for
from jwks_server import JwksServer, SigningKey
from oidc_provider import OidcProvider

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("SENTINEL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--no-sandbox"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT = 20.0  # generous: the machine may be busy; nothing here asserts a duration
STATUSES = ("RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED")
INGEST = "sentinel-ingest"

# Page-side checks, run by wait_for_function with one argument.
PROGRESS_IS = (
    "([id, pct]) => document.querySelector(`tr[data-id='${id}'] [role=progressbar]`)"
    "?.getAttribute('aria-valuenow') === String(pct)"
)
LOG_AT_BOTTOM = (
    "() => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 8 }"
)
SHOWN_MESSAGES = (
    "want => [...document.querySelectorAll('#log .line:not([hidden]) .msg')].map(e => e.textContent).join('|') === want"
)
COUNTS_ARE = (
    "want => Object.entries(want).every(([s, n]) =>"
    " document.querySelector(`button.count.s-${s} .n`).textContent === String(n))"
)
ROWS_ARE = (
    "want => JSON.stringify([...document.querySelectorAll('tbody tr[data-id]')].map(r => r.dataset.id).sort())"
    " === JSON.stringify(want)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("ui") / "data", dev=True, workers=1) as api:
        yield api


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)"
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Producer:
    """Posts events for one tenant with an ingest token (minted once per tenant)."""

    tokens: dict[str, str] = {}

    def __init__(self, server: ApiServer, tenant: str) -> None:
        self.server = server
        self.tenant = tenant
        if tenant not in self.tokens:
            self.tokens[tenant] = server.dev_token(tenant, INGEST)

    def post(self, *events: dict[str, Any]) -> None:
        with self.server.client(self.tokens[self.tenant]) as http:
            answer = http.post("/events", json=list(events))
            assert answer.status_code == 202, answer.text

    def processes(self, **params: str) -> list[dict[str, Any]]:
        """Every row of ``GET /processes`` under these filters, following the cursors."""
        rows: list[dict[str, Any]] = []
        cursor = None
        with self.server.client(self.tokens[self.tenant]) as http:
            while True:
                query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
                page = http.get("/processes", params=query).json()
                rows += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return rows

    def wait_stored(self, process_id: str, status: str | None = None) -> dict[str, Any]:
        with self.server.client(self.tokens[self.tenant]) as http:

            def stored() -> dict[str, Any] | None:
                answer = http.get(f"/status/{quote(process_id, safe='')}")
                if answer.status_code != 200:
                    return None
                doc: dict[str, Any] = answer.json()
                return doc if status is None or doc["status"] == status else None

            found: dict[str, Any] = wait_for(stored, WAIT, f"{process_id} stored")
            return found


class Dashboard:
    """One signed-in browser context; records every request it makes."""

    def __init__(self, browser: Any, server: ApiServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def sign_in(self, tenant: str, *, admin: bool = False, path: str = "/ui") -> Dashboard:
        self.page.goto(self.server.base_url + path)
        self.page.fill("#dev-tenant", tenant)
        if admin:
            self.page.check("#dev-admin")
        self.page.click("#dev-sign-in")
        self.page.wait_for_selector("#who:not([hidden])", timeout=WAIT * 1000)
        return self

    def row(self, process_id: str) -> Any:
        return self.page.locator(f'tbody tr[data-id="{process_id}"]')

    def wait(self, script: str, arg: Any = None, what: str = "") -> None:
        try:
            self.page.wait_for_function(script, arg=arg, timeout=WAIT * 1000)
        except sync_api.TimeoutError:
            raise AssertionError(f"timed out waiting for {what or script}") from None

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def outside_requests(self) -> list[str]:
        base = self.server.base_url + "/"
        return [url for url in self.requests if not (url.startswith(base) or url.startswith("data:"))]

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"page errors: {self.errors}"
        assert self.outside_requests() == [], "the page asked an address other than the server"
        assert self.requests, "no request was recorded"


@contextlib.contextmanager
def dashboard(browser: Any, server: ApiServer, tenant: str, **kwargs: Any) -> Iterator[Dashboard]:
    board = Dashboard(browser, server).sign_in(tenant, **kwargs)
    try:
        yield board
    finally:
        board.close()


def test_root_redirects_and_the_page_holds_no_tenant_data(server: ApiServer) -> None:
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        root = http.get("/")
        assert root.status_code == 302
        assert root.headers["location"] == "/ui"
        for path in ("/ui", "/ui/dead-letters", "/ui/processes/a%2Fb"):
            page = http.get(path)
            assert page.status_code == 200
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert page.headers["cache-control"] == "no-store"
        # Without a token the data calls refuse, exactly as the API does.
        assert http.get("/ui/api/processes/live").status_code == 401
        assert http.get("/ui/api/health").status_code == 401
        assert http.get("/ui/api/dead-letters").status_code == 401


def test_dashboard_data_calls_are_tenant_scoped_and_checked(server: ApiServer) -> None:
    owner, other = unique("own"), unique("other")
    producer = Producer(server, owner)
    pid = unique("fail/1")
    producer.post(event("STARTED", pid, process_name="Nightly"), event("ERROR", pid, stack_trace="at step 3"))
    producer.wait_stored(pid, "FAILED")
    path = f"/ui/api/stack-trace/{quote(pid, safe='')}"
    with server.client(producer.tokens[owner]) as http:
        assert http.get(path).json() == {"process_id": pid, "stack_trace": "at step 3"}
        assert http.get("/ui/api/counts", params={"q": "nightly"}).json()["counts"]["FAILED"] == 1
        assert http.get("/ui/api/counts", params={"q": "x" * 201}).status_code == 400
        refused = http.get("/ui/api/dead-letters")
        assert refused.status_code == 403
        assert "sentinel-admin" in refused.json()["detail"]
    with server.client(server.dev_token(other)) as http:
        assert http.get(path).status_code == 404  # the same answer as for a process that never existed
        assert http.get("/ui/api/counts", params={"q": "nightly"}).json()["total"] == 0
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        for body in ({"tenant": ""}, {"tenant": "a", "roles": ["root"]}, {"tenant": "x" * 51}):
            assert http.post("/ui/dev/token", json=body).status_code == 400
        assert http.post("/ui/dev/token", content=b"{", headers={"content-type": "application/json"}).status_code == 400
        minted = http.post("/ui/dev/token", json={"tenant": other, "admin": True}).json()
        assert minted["token_type"] == "Bearer"
        assert 0 < minted["expires_in"] <= 900
    with server.client(minted["access_token"]) as http:
        assert http.get("/ui/api/dead-letters").status_code == 200
        assert http.post("/events", json=[event("STARTED", "p")]).status_code == 403  # the dashboard only reads


def test_live_table_shows_new_processes_progress_and_endings(browser: Any, server: ApiServer) -> None:
    tenant = unique("live")
    producer = Producer(server, tenant)
    with dashboard(browser, server, tenant) as board:
        board.page.wait_for_selector("#f-q")
        board.wait("document.querySelector('.live.on') !== null", what="the live feed to connect")
        board.page.evaluate("window.__samePage = true")
        ok, bad = unique("job-ok"), unique("job-bad")
        producer.post(
            event("STARTED", ok, process_name="nightly billing", process_type="ETL", package_name="PKG_BILLING"),
            event("STARTED", bad, process_name="ledger sync", process_type="SYNC", package_name="PKG_LEDGER"),
        )
        board.row(ok).wait_for(timeout=WAIT * 1000)
        board.row(bad).wait_for(timeout=WAIT * 1000)
        assert "RUNNING" in board.row(ok).locator(".badge").inner_text()
        producer.post(event("PROGRESS", ok, percent=40, step="transform"))
        board.wait(
            PROGRESS_IS,
            [ok, 40],
            "the progress bar to reach 40",
        )
        assert "transform" in board.row(ok).inner_text()
        assert "40%" in board.row(ok).inner_text()
        producer.post(event("PROGRESS", ok, percent=85, step="load"))
        board.wait(
            PROGRESS_IS,
            [ok, 85],
            "the progress bar to move to 85",
        )
        board.shot("processes-running")
        producer.post(event("COMPLETED", ok), event("ERROR", bad, error_code="ORA-00060", error_message="deadlock"))
        board.wait(
            "id => document.querySelector(`tr[data-id='${id}'] .badge`)?.textContent === 'COMPLETED'", ok, "COMPLETED"
        )
        board.wait(
            "id => document.querySelector(`tr[data-id='${id}']`)?.className.includes('st-FAILED')", bad, "FAILED"
        )
        assert board.row(bad).locator(".badge").inner_text() == "FAILED"
        # Live: the same page, never reloaded.
        assert board.page.evaluate("window.__samePage") is True
        # One stream for the page's whole life: the live feed, opened once (no filter was changed).
        assert sum("/ui/api/processes/live" in url for url in board.requests) == 1
        # FAILED stands out: its row and its count are styled apart from the rest.
        board.wait(
            "() => document.querySelector('button.count.s-FAILED.hot') !== null", what="the FAILED count to stand out"
        )
        assert board.row(bad).evaluate("tr => getComputedStyle(tr).backgroundColor") != board.row(ok).evaluate(
            "tr => getComputedStyle(tr).backgroundColor"
        )
        board.shot("processes")


def test_process_view_tails_the_log_filters_and_stops_following(browser: Any, server: ApiServer) -> None:
    tenant = unique("tail")
    producer = Producer(server, tenant)
    pid = unique("etl/run")  # a '/' in the id travels through every URL
    producer.post(
        event("STARTED", pid, process_name="warehouse load", metadata={"host": "db1", "attempt": 1}),
        *[
            event("LOG", pid, level=level, message=f"line {i}", trace_id=f"{i:032x}", span_id=f"{i:016x}")
            for i, level in enumerate(["INFO", "DEBUG", "WARN", "ERROR", "INFO"] * 8)
        ],
    )
    producer.wait_stored(pid)
    with dashboard(browser, server, tenant) as board:
        board.row(pid).locator("a").click()
        board.wait("() => document.querySelectorAll('#log .line').length >= 40", what="40 log lines")
        assert board.page.url.endswith(f"/ui/processes/{quote(pid, safe='')}")
        first = board.page.locator("#log .line").first.inner_text()
        assert f"trace {0:032x}" in first
        assert f"span {0:016x}" in first
        assert '"host": "db1"' in board.page.locator("pre.json").inner_text()
        # The tail grows while the page is open.
        producer.post(*[event("LOG", pid, level="INFO", message=f"more {i}") for i in range(200)])
        board.wait("() => document.querySelectorAll('#log .line').length >= 240", what="the tail to grow")
        assert board.page.is_checked("#log-follow")
        board.wait(
            LOG_AT_BOTTOM,
            what="auto-scroll to the bottom",
        )
        # Level filter: ERROR and above shows the ERROR lines only.
        board.page.select_option("#log-level", "ERROR")
        levels = board.page.eval_on_selector_all("#log .line:not([hidden]) .lv", "els => els.map(e => e.textContent)")
        assert levels == ["ERROR"] * 8
        board.page.select_option("#log-level", "TRACE")
        board.page.fill("#log-search", "more 19")
        board.wait(
            SHOWN_MESSAGES,
            "|".join(["more 19"] + [f"more {i}" for i in range(190, 200)]),
            what="the search to keep the matching lines",
        )
        board.page.fill("#log-search", "")
        board.wait("() => document.querySelectorAll('#log .line:not([hidden])').length >= 240", what="every line back")
        # Scrolling up stops auto-scroll: new lines arrive and the view stays where the user put it.
        board.page.evaluate("document.getElementById('log').scrollTop = 0")
        board.wait("() => !document.getElementById('log-follow').checked", what="auto-scroll to switch off")
        producer.post(*[event("LOG", pid, level="INFO", message=f"late {i}") for i in range(50)])
        board.wait("() => document.querySelectorAll('#log .line').length >= 290", what="the late lines")
        assert board.page.evaluate("document.getElementById('log').scrollTop") == 0
        board.shot("process-running")
        # The end: the stream closes for good; a page left open does not ask for the log again.
        producer.post(
            event("ERROR", pid, error_code="E42", error_message="disk full", stack_trace="Traceback\n  at load()")
        )
        board.wait("() => !document.querySelector('.logend').hidden", what="the end of the log")
        assert "Traceback" in board.page.locator("pre.trace").inner_text()
        assert board.page.locator(".head .badge").inner_text() == "FAILED"
        log_requests = sum("/logs/" in url for url in board.requests)
        assert log_requests == 1
        board.page.wait_for_timeout(4000)
        assert sum("/logs/" in url for url in board.requests) == log_requests, "the finished log was asked again"
        board.shot("process")


def test_filters_and_counts_agree_with_the_api(browser: Any, server: ApiServer) -> None:
    tenant = unique("filters")
    producer = Producer(server, tenant)
    events: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    for i in range(12):
        pid = f"{tenant}-p{i:02d}"
        ids[pid] = ["RUNNING", "COMPLETED", "FAILED", "CANCELLED"][i % 4]
        kind = "ETL" if i % 3 else "SYNC"
        events.append(event("STARTED", pid, process_name=f"job {i}", process_type=kind, package_name=f"PKG_{i % 2}"))
        if ids[pid] == "COMPLETED":
            events.append(event("COMPLETED", pid))
        elif ids[pid] == "FAILED":
            events.append(event("ERROR", pid, error_message="boom"))
        elif ids[pid] == "CANCELLED":
            events.append(event("CANCELLED", pid, reason="operator"))
    producer.post(*events)
    producer.wait_stored(f"{tenant}-p11", "CANCELLED")
    with dashboard(browser, server, tenant) as board:

        def shown() -> set[str]:
            return set(board.page.eval_on_selector_all("tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)"))

        def counts() -> dict[str, int]:
            return {
                status: int(board.page.locator(f"button.count.s-{status} .n").inner_text().replace(",", ""))
                for status in STATUSES
            }

        def agree(params: dict[str, str]) -> None:
            every = producer.processes(**params)
            expected = {status: sum(row["status"] == status for row in every) for status in STATUSES}
            board.wait(
                COUNTS_ARE,
                expected,
                f"counts {expected}",
            )
            assert counts() == expected
            for status in STATUSES:
                wanted = {row["process_id"] for row in every if row["status"] == status}
                board.page.click(f"button.count.s-{status}")
                board.wait(
                    ROWS_ARE,
                    sorted(wanted),
                    f"{status} rows",
                )
                api_rows = producer.processes(status=status, **params)
                assert shown() == {row["process_id"] for row in api_rows}
                assert f"status={status}" in board.page.url
                board.page.click(f"button.count.s-{status}")  # a second click clears the filter

        agree({})
        board.page.fill("#f-type", "ETL")
        agree({"process_type": "ETL"})
        board.page.fill("#f-package", "PKG_1")
        agree({"process_type": "ETL", "package_name": "PKG_1"})
        board.page.fill("#f-type", "")
        board.page.fill("#f-package", "")
        board.page.fill("#f-q", "P0")  # id or name, any case
        agree({"q": "P0"})
        board.wait(
            "want => document.querySelectorAll('tbody tr[data-id]').length === want",
            sum("p0" in pid for pid in ids),
            "every p0 row",
        )
        assert shown() == {pid for pid in ids if "p0" in pid}
        # The filters are in the URL: a bookmark opens the same view.
        url = board.page.url
        assert "q=P0" in url
        board.page.goto(url)  # the reload signs in again with the tab's tenant (dev mode); no token was kept
        board.page.wait_for_selector("tbody tr[data-id]", timeout=WAIT * 1000)
        assert board.page.input_value("#f-q") == "P0"
        board.shot("processes-filtered")


def test_pages_through_rows_with_the_api_cursors(browser: Any, server: ApiServer) -> None:
    tenant = unique("pages")
    producer = Producer(server, tenant)
    producer.post(*[event("STARTED", f"{tenant}-{i:03d}", process_name=f"job {i}") for i in range(120)])
    producer.wait_stored(f"{tenant}-119")
    wait_for(lambda: len(producer.processes()) == 120, WAIT, "120 rows")
    with dashboard(browser, server, tenant) as board:
        seen: list[str] = []
        board.page.wait_for_selector("tbody tr[data-id]")
        for expected in (50, 50, 20):
            board.wait("n => document.querySelectorAll('tbody tr[data-id]').length === n", expected, f"{expected} rows")
            seen += board.page.eval_on_selector_all("tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")
            if expected == 50:
                first = board.page.locator("tbody tr[data-id]").first.get_attribute("data-id")
                board.page.click("#page-older")
                board.wait(
                    "id => document.querySelector('tbody tr[data-id]')?.dataset.id !== id", first, "the next page"
                )
        assert board.page.is_disabled("#page-older")
        assert seen == [row["process_id"] for row in producer.processes()]
        board.page.click("#page-newer")  # back one page: rows 51-100 again
        board.wait("n => document.querySelectorAll('tbody tr[data-id]').length === n", 50, "the previous page")
        assert board.page.locator("tbody tr[data-id]").first.get_attribute("data-id") == seen[50]
        board.page.click("#page-newest")
        board.wait("id => document.querySelector('tbody tr[data-id]')?.dataset.id === id", seen[0], "the first page")
        assert board.page.is_disabled("#page-newer")


def test_a_second_tenant_sees_none_of_the_first_tenants_processes(browser: Any, server: ApiServer) -> None:
    first, second = unique("alpha"), unique("beta")
    mine = unique("alpha-secret")
    Producer(server, first).post(event("STARTED", mine, process_name="alpha payroll"))
    Producer(server, first).wait_stored(mine)
    ours = unique("beta-own")
    Producer(server, second).post(event("STARTED", ours, process_name="beta own"))
    Producer(server, second).wait_stored(ours)
    with dashboard(browser, server, second) as board:
        board.row(ours).wait_for(timeout=WAIT * 1000)
        assert board.page.locator("button.count.s-ALL .n").inner_text() == "1"
        assert board.row(mine).count() == 0
        assert "alpha" not in board.page.locator("main").inner_text()
        board.page.fill("#f-q", mine)
        board.page.wait_for_selector("td.empty", timeout=WAIT * 1000)
        # Even the first tenant's URL shows nothing of it.
        board.page.evaluate("id => history.pushState(null, '', '/ui/processes/' + encodeURIComponent(id))", mine)
        board.page.evaluate("dispatchEvent(new PopStateEvent('popstate'))")
        board.page.wait_for_selector(".error-box", timeout=WAIT * 1000)
        assert "No process" in board.page.locator(".error-box").inner_text()
        assert "alpha payroll" not in board.page.content()


def test_dead_letters_for_the_admin_role_only(browser: Any, server: ApiServer, tmp_path: Path) -> None:
    marker = unique("garbage")
    lines = tmp_path / "bad.jsonl"
    lines.write_text(f'{{"event_id": "{marker}", "event_type": "NOPE"}}\n')
    done = sentinel_run("emit", str(lines), env=server.env)
    assert done.returncode == 0, done.stderr
    with dashboard(browser, server, unique("ops"), admin=True) as board:
        board.page.click("nav a[data-view=dead-letters]")
        board.page.wait_for_selector("tbody tr td .code", timeout=WAIT * 1000)
        newest = board.page.locator("tbody tr").first
        assert "event_type" in newest.inner_text()
        newest.locator("summary").click()
        assert marker in newest.locator("pre").inner_text()
        board.shot("dead-letters")
    with dashboard(browser, server, unique("user")) as board:
        board.page.click("nav a[data-view=dead-letters]")
        board.page.wait_for_selector(".error-box", timeout=WAIT * 1000)
        assert "sentinel-admin" in board.page.locator(".error-box").inner_text()


def test_health_strip_and_sign_out(browser: Any, server: ApiServer) -> None:
    with dashboard(browser, server, unique("health")) as board:
        board.wait("() => document.getElementById('health').textContent.includes('queue depth')", what="health")
        strip = board.page.locator("#health").inner_text()
        for part in ("ingest", "ingest lag", "queue depth", "core", "store sqlite"):
            assert part in strip
        board.page.click("#sign-out")
        board.page.wait_for_selector("#dev-tenant")
        assert board.page.locator("#who").is_hidden()
        # The token was in memory only: nothing of it is kept by the browser.
        stored = board.page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        assert "eyJ" not in stored
        board.page.reload()
        board.page.wait_for_selector("#dev-tenant")  # signed out stays signed out


def test_keyboard_reaches_every_control_and_every_input_has_a_label(browser: Any, server: ApiServer) -> None:
    tenant = unique("keys")
    producer = Producer(server, tenant)
    pid = unique("kb")
    producer.post(event("STARTED", pid), event("LOG", pid, message="hello"))
    producer.wait_stored(pid)
    board = Dashboard(browser, server)
    try:
        board.page.goto(server.base_url + "/ui")
        board.page.wait_for_selector("#dev-tenant")
        board.shot("sign-in")
        check_controls(board, "sign-in")
        board.sign_in(tenant, admin=True)
        board.row(pid).wait_for(timeout=WAIT * 1000)
        check_controls(board, "processes")
        board.row(pid).locator("a").click()
        board.page.wait_for_selector("#log .line", timeout=WAIT * 1000)
        check_controls(board, "process")
        board.page.click("nav a[data-view=dead-letters]")
        board.page.wait_for_selector("tbody tr", timeout=WAIT * 1000)
        check_controls(board, "dead letters")
    finally:
        board.close()


def check_controls(board: Dashboard, view: str) -> None:
    unlabeled = board.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    assert unlabeled == [], f"{view}: inputs without a label: {unlabeled}"
    controls = board.page.evaluate(
        """() => {
            const all = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
              .filter(el => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length)
              .filter(el => getComputedStyle(el).visibility !== 'hidden');
            all.forEach((el, i) => el.dataset.kb = String(i));
            return all.length;
        }"""
    )
    assert controls > 0
    board.page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    board.page.locator("body").focus()
    reached: set[str] = set()
    for _ in range(controls * 2 + 10):
        board.page.keyboard.press("Tab")
        mark = board.page.evaluate("document.activeElement?.dataset.kb ?? null")
        if mark is not None:
            reached.add(mark)
        if len(reached) == controls:
            break
    missed = board.page.evaluate(
        "reached => [...document.querySelectorAll('[data-kb]')]"
        ".filter(el => !reached.includes(el.dataset.kb)).map(el => el.outerHTML.slice(0, 120))",
        sorted(reached),
    )
    assert missed == [], f"{view}: Tab never reaches {missed}"


def test_schema_renders_offline(browser: Any, server: ApiServer) -> None:
    context = browser.new_context()
    outside: list[str] = []
    base = server.base_url + "/"

    def offline(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    try:
        page.goto(server.base_url + "/schema")
        page.wait_for_selector(".swagger-ui .opblock", timeout=WAIT * 1000)
        assert page.locator(".opblock-summary-path", has_text="/processes").count() >= 1
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("Process Sentinel")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "schema.png"))
    finally:
        context.close()
    assert outside == []


def test_outside_dev_mode_there_is_no_dev_sign_in(tmp_path: Path) -> None:
    with (
        JwksServer([SigningKey.ec()]) as idp,
        ApiServer(tmp_path / "data", idp=idp, env={"SENTINEL_UI_CLIENT_ID": "sentinel-dashboard"}) as api,
        httpx.Client(base_url=api.base_url, trust_env=False) as http,
    ):
        assert http.post("/ui/dev/token", json={"tenant": "acme"}).status_code in (404, 405)
        page = http.get("/ui")
        config = json.loads(page.text.split('data-config="', 1)[1].split('"', 1)[0].replace("&#34;", '"'))
        assert config["dev"] is False
        assert config["clientId"] == "sentinel-dashboard"
        assert config["issuer"] == idp.issuer
        assert idp.issuer.split("/realms")[0] in page.headers["content-security-policy"]
        openapi = http.get("/schema/openapi.json").json()
        assert "/ui/dev/token" not in openapi["paths"]


def test_oidc_sign_in_with_pkce_refresh_and_sign_out(browser: Any, tmp_path: Path) -> None:
    tenant = unique("oidc")
    client_id = "sentinel-dashboard"
    provider = OidcProvider(client_id=client_id, audience="sentinel", tenant=tenant, token_sec=12)
    with (
        provider as idp,
        ApiServer(tmp_path / "data", idp=idp, env={"SENTINEL_UI_CLIENT_ID": client_id}) as api,  # type: ignore[arg-type]
    ):
        now = int(time.time())
        ingest = idp.key.sign(
            {"iss": idp.issuer, "aud": "sentinel", "exp": now + 600, "tenant_id": tenant, "roles": [INGEST]}
        )
        board = Dashboard(browser, api)
        try:
            page = board.page
            page.goto(api.base_url + "/ui?status=RUNNING")
            page.click("#oidc-sign-in")  # to the provider and back, with a code the page trades for tokens
            page.wait_for_selector("#who:not([hidden])", timeout=WAIT * 1000)
            assert tenant in page.locator("#who-tenant").inner_text()
            assert page.url == api.base_url + "/ui?status=RUNNING"  # back where the user started
            (authorize,) = [params for method, path, params in idp.requests if path.endswith("/auth")]
            assert authorize["code_challenge_method"] == ["S256"]
            assert authorize["redirect_uri"] == [api.base_url + "/ui/callback"]
            pid = unique("oidc-job")
            with api.client(ingest) as http:
                assert http.post("/events", json=[event("STARTED", pid)]).status_code == 202
            board.row(pid).wait_for(timeout=WAIT * 1000)
            # The token is refreshed before it expires (12 s here), and the page keeps working on the new one.
            wait_for(lambda: idp.refreshed >= 1, WAIT, "a refresh")
            later = unique("oidc-later")
            with api.client(ingest) as http:
                assert http.post("/events", json=[event("STARTED", later)]).status_code == 202
            board.row(later).wait_for(timeout=WAIT * 1000)
            kept = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
            assert "eyJ" not in kept  # no token in web storage
            assert not any(token in kept for token in idp._refresh)
            # A reload signs in again through the provider's session, without a click.
            page.reload()
            page.wait_for_selector("#who:not([hidden])", timeout=WAIT * 1000)
            board.row(later).wait_for(timeout=WAIT * 1000)
            assert len([path for _, path, _ in idp.requests if path.endswith("/auth")]) == 2
            # Sign-out revokes the refresh token and ends the provider's session.
            page.click("#sign-out")
            page.wait_for_selector("#oidc-sign-in", timeout=WAIT * 1000)
            wait_for(lambda: idp.ended == 1, WAIT, "the end-session call")
            assert len(idp.revoked) == 1
            assert page.url == api.base_url + "/ui"
        finally:
            board.context.close()
        outside = [url for url in board.requests if not url.startswith((api.base_url + "/", idp.base_url + "/"))]
        assert outside == []
        assert not board.errors


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SENTINEL_UI_CLIENT_ID", "two words", "SENTINEL_UI_CLIENT_ID: expected a client id without spaces"),
        ("SENTINEL_UI_SCOPES", "profile email", "SENTINEL_UI_SCOPES: expected space-separated scopes including openid"),
        ("SENTINEL_UI_SCOPES", "openid bad;scope", "SENTINEL_UI_SCOPES: expected space-separated scopes"),
        ("SENTINEL_ADMIN_ROLE", "admin role", "SENTINEL_ADMIN_ROLE: expected a plain name"),
    ],
)
def test_dashboard_settings_are_checked(name: str, value: str, message: str) -> None:
    from sentinel.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_dashboard_settings_defaults_and_values() -> None:
    from sentinel.config import load_settings

    default = load_settings({})
    assert (default.ui_client_id, default.ui_scopes, default.admin_role) == (None, "openid", "sentinel-admin")
    chosen = load_settings(
        {"SENTINEL_UI_CLIENT_ID": "ops-ui", "SENTINEL_UI_SCOPES": " openid  profile ", "SENTINEL_ADMIN_ROLE": "ops"}
    )
    assert (chosen.ui_client_id, chosen.ui_scopes, chosen.admin_role) == ("ops-ui", "openid profile", "ops")


def test_log_tail_resumes_after_a_server_restart_without_repeats(browser: Any, tmp_path: Path) -> None:
    tenant = unique("resume")
    pid = unique("resumable")
    with ApiServer(tmp_path / "data", dev=True) as api:
        producer = Producer(api, tenant)
        producer.post(event("STARTED", pid), *[event("LOG", pid, message=f"before {i}") for i in range(20)])
        producer.wait_stored(pid)
        board = Dashboard(browser, api).sign_in(tenant, path=f"/ui/processes/{quote(pid, safe='')}")
        try:
            board.wait("() => document.querySelectorAll('#log .line').length === 20", what="the first 20 lines")
            api.stop()  # the stream drops mid-way
            board.wait(
                "() => document.querySelector('.logbar .meta').textContent.includes('reconnecting')", what="a drop"
            )
            api.start()  # same data, same dev key: the page's token is still good
            producer.post(*[event("LOG", pid, message=f"after {i}") for i in range(10)])
            board.page.wait_for_function(
                "() => document.querySelectorAll('#log .line').length >= 30", timeout=90_000
            )  # the page retries with a growing delay
            board.page.wait_for_timeout(1000)
            seqs = board.page.eval_on_selector_all("#log .line", "rows => rows.map(r => Number(r.dataset.seq))")
            assert len(seqs) == 30
            assert seqs == sorted(set(seqs)), "a line was repeated or reordered after the reconnect"
        finally:
            board.close()
