"""The ``sentinel`` command (SPEC sections 5, 6 and 7).

Every failure a user can cause (a bad argument or setting, a missing file or database, a server that
is down or refuses the token) ends the command with ONE line on stderr and a non-zero status: argument
types are checked by argparse, and :func:`main` turns every error into that line. Only ``serve`` and
``migrate`` create a database or a dev key; the other commands say where they looked instead.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from sentinel import __version__
from sentinel.config import Settings, SettingsError, load_settings, require_identity_provider

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from sentinel.client import Process, SentinelClient
    from sentinel.store.base import Store

log = logging.getLogger("sentinel")

STATUSES = ("RUNNING", "STALLED", "COMPLETED", "FAILED", "CANCELLED")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
EMIT_CHUNK = 1000  # lines judged by the core at a time
EMIT_REASONS = 5  # reasons shown for lines the ingest will refuse


class CliError(Exception):
    """A user-facing failure: ``str()`` is the one line to print."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- argument types (each raises ArgumentTypeError with the rule it checks) ---------------------------


def _int_type(low: int, high: int | None = None) -> Callable[[str], int]:
    rule = f"a whole number from {low} to {high}" if high is not None else f"a whole number of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {value}")
        return value

    return parse


def _float_type(low: float, high: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    if high is not None:
        rule = f"a number from {low:g} to {high:g}"
    else:
        rule = f"a number above {low:g}" if above else f"a number of at least {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        if (above and value <= low) or (not above and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        return value

    return parse


def _name_type(what: str, limit: int) -> Callable[[str], str]:
    """A non-empty name of at most ``limit`` characters without control characters (tenant ids, roles)."""

    def parse(text: str) -> str:
        if not 0 < len(text) <= limit or not text.strip():
            raise argparse.ArgumentTypeError(f"expected a {what} of 1 to {limit} characters, got {text!r}")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
            raise argparse.ArgumentTypeError(f"expected a {what} without control characters, got {text!r}")
        return text

    return parse


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _since_type(text: str) -> str:
    """``--since``: a duration back from now (``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``) or an RFC 3339
    date-time with an offset. Returns an RFC 3339 UTC time."""
    from sentinel import _core
    from sentinel._core._shared import MIN_YEAR

    raw = text.strip()
    match = _DURATION.fullmatch(raw)
    if raw and match is not None and any(match.groups()):
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        try:
            moment = datetime.now(UTC) - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        except OverflowError:
            moment = datetime.min.replace(tzinfo=UTC)
        if moment.year < MIN_YEAR:
            raise argparse.ArgumentTypeError(
                f"duration too long: {text!r} reaches back before {MIN_YEAR}, the earliest time Sentinel keeps"
            )
        return _rfc3339(moment)
    try:
        micros = int(_core.parse_timestamp(raw))
    except (_core.EventRejected, OverflowError):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 15m, 2h or 1d, or an RFC 3339 time with offset, got {text!r}"
        ) from None
    return _rfc3339(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))


def _statuses_type(text: str) -> list[str]:
    wanted = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [status for status in wanted if status not in STATUSES]
    if not wanted or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(STATUSES)}, got {text!r}")
    return wanted


def _level_type(text: str) -> str:
    level = text.strip().upper()
    if level == "WARNING":
        level = "WARN"
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LEVELS)}, got {text!r}")
    return level


def _url_type(text: str) -> str:
    from sentinel.client import ConfigurationError
    from sentinel.client._client import _base_url

    try:
        return _base_url(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("url: ")) from None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- shared plumbing ---------------------------------------------------------------------------------


def _settings(args: argparse.Namespace, *, dev: bool | None = None) -> Settings:
    settings = load_settings(dev_mode=dev)
    if getattr(args, "data_dir", None):
        settings = replace(settings, data_dir=Path(args.data_dir))
    return settings


def _where_from(args: argparse.Namespace) -> str:
    if getattr(args, "data_dir", None):
        return "--data-dir"
    if os.environ.get("SENTINEL_DATA_DIR", "").strip():
        return "SENTINEL_DATA_DIR"
    return "the default ./sentinel-data"


def _refuse_a_file_as_data_dir(args: argparse.Namespace, database: Path) -> None:
    blocker = next((p for p in database.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise CliError(f"the data directory {database.parent} (from {_where_from(args)}): {blocker} is a file")


def _existing_store(args: argparse.Namespace, settings: Settings) -> Store:
    """The store a server already uses; never creates a database."""
    from sentinel.store import open_store

    if settings.backend == "sqlite":
        path = settings.sqlite_path.absolute()
        _refuse_a_file_as_data_dir(args, path)
        if not path.is_file():
            raise CliError(
                f"no Sentinel database at {path} (from {_where_from(args)}); run the command where the server's "
                "data directory is, or point --data-dir or SENTINEL_DATA_DIR at it (sentinel serve creates it)"
            )
    store: Store = open_store(settings)
    return store


@contextmanager
def _server_store(args: argparse.Namespace, settings: Settings | None = None) -> Iterator[Store]:
    """The command's settings, then the store a server already uses (``_existing_store``), closed when
    the block ends."""
    store = _existing_store(args, _settings(args) if settings is None else settings)
    try:
        yield store
    finally:
        store.close()


def _dev_key(args: argparse.Namespace, settings: Settings) -> Path:
    from sentinel.security.dev import DEV_KEY_FILENAME

    return (settings.data_dir / DEV_KEY_FILENAME).absolute()


def _require_dev_key(args: argparse.Namespace, settings: Settings) -> Path:
    key = _dev_key(args, settings)
    if not key.is_file():
        raise CliError(
            f"no dev signing key at {key} (from {_where_from(args)}); start `sentinel serve --dev` with that data "
            "directory first, or point --data-dir or SENTINEL_DATA_DIR at the dev server's data directory"
        )
    return key


def _open_input(name: str | None) -> IO[bytes]:
    if name in (None, "-"):
        return sys.stdin.buffer
    path = Path(name)
    if path.is_dir():
        raise CliError(f"cannot read {name}: it is a directory (expected a JSON Lines file)")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None


# -- migrate -------------------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.oracle:
        from sentinel.store.oracle import render_plan

        if args.dry_run:
            # The statements in order, as a script SQL*Plus would run; no database is touched.
            sys.stdout.write(render_plan())
            return 0
        settings = _settings(args)
        if settings.backend != "oracle":
            raise SettingsError("ORACLE_CONNECT_STRING: required for sentinel migrate --oracle")
        with _server_store(args, settings) as store:
            applied = store.migrate()
        done = f"applied {', '.join(applied)}" if applied else "schema is up to date"
        print(f"oracle {settings.oracle_connect_string}: {done}")
        return 0
    settings = _settings(args)
    if settings.backend != "sqlite":
        raise CliError("the embedded schema is for SENTINEL_BACKEND=sqlite; use sentinel migrate --oracle for Oracle")
    from sentinel.store.sqlite import SqliteStore, pending_migrations

    path = settings.sqlite_path.absolute()
    if args.dry_run:
        _refuse_a_file_as_data_dir(args, path)
        pending = pending_migrations(path)
        if not path.exists():
            print(f"dry run: would create {path} and apply {', '.join(pending)}")
        elif pending:
            print(f"dry run: would apply {', '.join(pending)} to {path}")
        else:
            print(f"dry run: {path} is up to date; nothing to apply")
        return 0
    store = SqliteStore(path)  # a data directory or file it cannot use is a StoreError naming the path
    try:
        applied = store.migrate()
    finally:
        store.close()
    print(f"sqlite {path}: " + (f"applied {', '.join(applied)}" if applied else "schema is up to date"))
    return 0


# -- emit ----------------------------------------------------------------------------------------------


def cmd_emit(args: argparse.Namespace) -> int:
    """Read every line first and judge it with the ingest's own core, then queue them all in one
    transaction: either every line is queued, or (on any error) none is."""
    from sentinel.simulate import judge

    stream = _open_input(args.file)
    try:
        payloads = [line.strip() for line in stream]
    except OSError as exc:
        raise CliError(f"cannot read {args.file or 'standard input'}: {exc.strerror or exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    numbers = [number for number, payload in enumerate(payloads, 1) if payload]
    payloads = [payload for payload in payloads if payload]
    priorities: list[int] = []
    refused: list[tuple[int, str, str]] = []
    for start in range(0, len(payloads), EMIT_CHUNK):
        chunk_priorities, chunk_refused = judge(payloads[start : start + EMIT_CHUNK])
        priorities += chunk_priorities
        refused += [(numbers[start + index], code, reason) for index, code, reason in chunk_refused]
    if not args.dry_run:
        with _server_store(args) as store:
            store.enqueue(payloads, priorities)
    verb = "would queue" if args.dry_run else "queued"
    summary = f"{verb} {len(payloads)} message(s)"
    if refused:
        summary += f"; {len(refused)} will be dead-lettered by the ingest"
    print(summary, file=sys.stderr)
    for number, code, reason in refused[:EMIT_REASONS]:
        print(f"  line {number}: {code}: {reason}", file=sys.stderr)
    if len(refused) > EMIT_REASONS:
        print(f"  ... and {len(refused) - EMIT_REASONS} more", file=sys.stderr)
    return 0


# -- simulate ------------------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from sentinel.simulate import ProgressBar, SimulationConfig, judge, run

    cfg = SimulationConfig(
        processes=args.processes,
        tenants=tuple(args.tenant or ["acme"]),
        failure_rate=args.failure_rate,
        duplicate_rate=args.duplicate_rate,
        invalid_rate=args.invalid_rate,
        concurrency=args.concurrency,
        seed=args.seed,
        profile_runs=args.profile_runs,
    )
    if args.stdout:

        def send(chunk: list[bytes]) -> None:
            sys.stdout.buffer.write(b"\n".join(chunk) + b"\n")

        close: Callable[[], None] = sys.stdout.flush
    else:
        store = _existing_store(args, _settings(args))

        def send(chunk: list[bytes]) -> None:
            store.enqueue(chunk, judge(chunk)[0])

        close = store.close
    chunk = 500 if args.rate <= 0 else max(1, min(500, int(args.rate / 10)))
    sent = 0
    bar: ProgressBar | None = None
    try:
        while True:
            bar = None if args.quiet else ProgressBar(cfg.processes)
            sent = run(cfg, send, chunk=chunk, rate=args.rate, progress=bar)
            if bar:
                bar.close()
                bar = None
            if not args.forever:
                break
            cfg.seed = None
    except KeyboardInterrupt:
        if bar:
            bar.close(finished=False)
        return 130
    finally:
        close()
    print(f"sent {sent} message(s) for {cfg.processes} process(es)", file=sys.stderr)
    return 0


# -- dead letters --------------------------------------------------------------------------------------


def cmd_dead_letters(args: argparse.Namespace) -> int:
    import msgspec

    from sentinel import _core

    with _server_store(args) as store:
        since_us = None if args.since is None else int(_core.parse_timestamp(args.since))
        total, rows = store.recent_dead_letters(args.limit, since_us)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode({"total": total, "items": rows}) + b"\n")
        return 0
    scope = "" if args.since is None else f" since {args.since}"
    if not rows:
        print(f"no dead letters{scope}")
        return 0
    for row in rows:
        payload = row.payload if len(row.payload) <= 120 else row.payload[:117] + "..."
        print(f"#{row.id}  {_rfc3339(row.dead_at)}  {row.code}: {row.reason}\n    {payload}")
    print(f"{len(rows)} of {total} dead letter(s){scope}, newest first")
    return 0


# -- token ---------------------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    from sentinel.security import DevAuthority

    settings = _settings(args, dev=True)
    _require_dev_key(args, settings)
    authority = DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim)
    roles = args.role if args.role else [settings.ingest_role]
    print(authority.mint(args.tenant, roles=roles, ttl_seconds=args.ttl, subject=args.subject))
    return 0


# -- ingest and serve ----------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from sentinel.ingest.service import run_ingest

    settings = _settings(args)
    _existing_store(args, settings).close()
    return run_ingest(settings)


def default_workers(settings: Settings) -> int:
    """HTTP workers when none are asked for: ``SENTINEL_WORKER_THREADS - 1`` if that variable is set,
    otherwise as many as the machine has cores for, up to that budget (at least one)."""
    if os.environ.get("SENTINEL_WORKER_THREADS", "").strip():
        return settings.http_workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(settings.http_workers, cores))


def cmd_serve(args: argparse.Namespace) -> int:
    from sentinel.serve import serve

    settings = _settings(args, dev=True if args.dev else None)
    require_identity_provider(settings)
    workers = args.workers if args.workers is not None else default_workers(settings)
    return serve(settings, demo=args.demo, demo_rate=args.demo_rate, port=args.port, host=args.host, workers=workers)


# -- views: ps, status, logs ---------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> SentinelClient:
    """A client for the server named by --url/SENTINEL_URL (default: this machine's listen port), with
    --token/SENTINEL_TOKEN, or in dev mode a short-lived token minted from the data directory's key."""
    from sentinel.client import SentinelClient

    settings = _settings(args, dev=True)
    url = args.url or os.environ.get("SENTINEL_URL", "").strip() or f"http://127.0.0.1:{settings.listen_port}"
    token = args.token or os.environ.get("SENTINEL_TOKEN", "").strip() or None
    if token is None:
        key = _dev_key(args, settings)
        if not key.is_file():
            raise CliError(
                f"no token: pass --token or set SENTINEL_TOKEN (for a dev server, no dev key at {key} "
                f"from {_where_from(args)} to mint one from: point --data-dir or SENTINEL_DATA_DIR at the server's "
                "data directory)"
            )
        return SentinelClient(url, _DevTokens(settings, args.tenant), timeout=args.timeout)
    return SentinelClient(url, token, timeout=args.timeout)


class _DevTokens:
    """Tokens minted from a dev server's key, renewed before they expire (``ps --watch`` runs for hours)."""

    TTL = 3600

    def __init__(self, settings: Settings, tenant: str) -> None:
        from sentinel.security import DevAuthority

        self._authority = DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim)
        self._tenant = tenant
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        if time.monotonic() >= self._renew_at:
            self._token = self._authority.mint(self._tenant, roles=(), ttl_seconds=self.TTL, subject="sentinel-cli")
            self._renew_at = time.monotonic() + self.TTL / 2
        return self._token

    async def atoken(self) -> str:
        return self.token()

    def invalidate(self, token: str) -> None:
        self._renew_at = 0.0


def _show(console: Console, renderable: RenderableType) -> None:
    """Print whole lines (a terminal narrower than the table wraps them, as it does kubectl's output);
    off a terminal, without the padding rich leaves at the end of table lines. (``--watch`` redraws in
    place instead, so it crops its frames to the terminal's width, as watch(1) does.)"""
    if console.is_terminal:
        console.print(renderable, crop=False)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _console(stream: IO[str] | None = None) -> Console:
    """Colours only on a terminal (and never with NO_COLOR); off a terminal, lines are not cut."""
    from rich.console import Console

    out = stream or sys.stdout
    tty = out.isatty()
    return Console(file=out, highlight=False, soft_wrap=not tty, width=None if tty else 100_000, emoji=False)


STATUS_STYLE = {
    "RUNNING": "cyan",
    "STALLED": "yellow",
    "COMPLETED": "green",
    "FAILED": "bold red",
    "CANCELLED": "magenta",
}
LEVEL_STYLE = {"TRACE": "dim", "DEBUG": "dim", "INFO": "", "WARN": "yellow", "ERROR": "red", "FATAL": "bold red"}


def human_duration(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d4h`` (as kubectl shows ages)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d{seconds % 86_400 // 3600}h"


def _timing(process: Process, now: datetime) -> str:
    if process.duration_ms is not None:
        return human_duration(process.duration_ms / 1000)
    if process.started_at is None:
        return "-"
    text = human_duration((now - process.started_at).total_seconds())
    if process.estimated_completion is not None and process.status == "RUNNING":
        text += f" (ETA {human_duration((process.estimated_completion - now).total_seconds())})"
    return text


def _progress(process: Process) -> str:
    return "-" if process.progress_percent is None else f"{process.progress_percent:g}%"


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def process_table(processes: Sequence[Process], wide: bool, now: datetime) -> RenderableType:
    """The ``ps`` table. Columns never shrink below their content: a narrow terminal wraps lines (as
    kubectl's output does) instead of cutting ids and statuses."""
    from rich.table import Table
    from rich.text import Text

    columns = ["ID", "STATUS", "NAME", "PROGRESS", "LAST SEEN", "DURATION"]
    if wide:
        columns += ["TYPE", "PACKAGE", "STEP", "EVENTS", "LOGS", "ERROR"]
    rows: list[list[str]] = []
    for process in processes:
        seen = "-" if process.last_seen_at is None else human_duration((now - process.last_seen_at).total_seconds())
        row = [
            process.process_id,
            process.status,
            _cell(process.process_name),
            _progress(process),
            seen if seen == "-" else f"{seen} ago",
            _timing(process, now),
        ]
        if wide:
            error = " ".join(part for part in (process.error_code, process.error_message) if part)
            row += [
                _cell(process.process_type),
                _cell(process.package_name),
                _cell(process.current_step),
                str(process.event_count),
                str(process.log_count),
                _cell(error[:80] if error else None),
            ]
        rows.append(row)
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for index, name in enumerate(columns):
        widest = max([len(name), *(len(row[index]) for row in rows)])
        table.add_column(name, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(row[0], Text(row[1], style=STATUS_STYLE.get(row[1], "")), *row[2:])
    return table


def _fetch_processes(client: SentinelClient, args: argparse.Namespace) -> list[Process]:
    found = []
    for process in client.processes(
        status=args.status,
        process_type=args.type,
        package_name=args.package,
        updated_since=args.since,
        page_size=min(args.limit, 500),
    ):
        found.append(process)
        if len(found) >= args.limit:
            break
    return found


def _ps_view(client: SentinelClient, args: argparse.Namespace) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    processes = _fetch_processes(client, args)
    now = datetime.now(UTC)
    if not processes:
        return Text(f"no processes for tenant {args.tenant}" if not args.token else "no processes")
    return Group(process_table(processes, args.output == "wide", now))


def cmd_ps(args: argparse.Namespace) -> int:
    import msgspec

    if args.watch and args.output == "json":
        raise CliError("--watch shows a table; it cannot be combined with -o json", code=2)
    with _client(args) as client:
        if args.output == "json":
            sys.stdout.buffer.write(msgspec.json.encode(_fetch_processes(client, args)) + b"\n")
            return 0
        console = _console()
        if not args.watch:
            _show(console, _ps_view(client, args))
            return 0
        return _watch(console, lambda: _ps_view(client, args), args.interval)


def _watch(console: Console, view: Callable[[], RenderableType], interval: float) -> int:
    """Redraw ``view`` every ``interval`` seconds until Ctrl-C: in place on a terminal, as successive
    timestamped tables elsewhere. A failed refresh is shown and retried, not fatal."""
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from sentinel.client import SentinelError

    def frame() -> RenderableType:
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        try:
            body = view()
            header = Text(f"every {interval:g}s: sentinel ps   {stamp}", style="dim")
        except SentinelError as exc:
            body = Text("")
            header = Text(f"{stamp}  refresh failed: {exc}; retrying", style="yellow")
        return Group(header, body)

    try:
        if console.is_terminal:
            with Live(frame(), console=console, auto_refresh=False, transient=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(frame(), refresh=True)
        while True:
            _show(console, frame())
            console.file.write("\n")
            console.file.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def cmd_status(args: argparse.Namespace) -> int:
    import msgspec

    with _client(args) as client:
        process = client.status(args.process_id)
    if args.output == "json":
        sys.stdout.buffer.write(msgspec.json.encode(process) + b"\n")
        return 0
    now = datetime.now(UTC)
    console = _console()
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name in msgspec.structs.fields(process):
        value = getattr(process, name.name)
        if isinstance(value, datetime):
            shown: str | Text = _rfc3339(value)
            if name.name in ("last_seen_at", "started_at", "ended_at"):
                shown += f"  ({human_duration((now - value).total_seconds())} ago)"
        elif isinstance(value, dict):
            shown = msgspec.json.encode(value).decode()
        elif name.name == "status":
            shown = Text(str(value), style=STATUS_STYLE.get(str(value), ""))
        elif name.name == "duration_ms" and value is not None:
            shown = f"{value} ({human_duration(value / 1000)})"
        else:
            shown = _cell(value)
        table.add_row(name.name, shown)
    _show(console, table)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    import msgspec
    from rich.text import Text

    console = _console()
    with _client(args) as client:
        waits = {} if args.wait is None else {"appear_within": args.wait}
        lines = client.logs(args.process_id, level=args.level, since=args.since, follow=args.follow, **waits)
        try:
            for line in lines:
                if args.output == "json":
                    sys.stdout.buffer.write(msgspec.json.encode(line) + b"\n")
                    sys.stdout.flush()
                    continue
                text = Text(f"{_rfc3339(line.timestamp)} ")
                text.append(f"{line.level:<5}", style=LEVEL_STYLE.get(line.level, ""))
                if line.component:
                    text.append(f" [{line.component}]", style="dim")
                text.append(f" {line.message}")
                if line.details:
                    text.append(" " + msgspec.json.encode(line.details).decode(), style="dim")
                console.print(text)
                console.file.flush()
        except KeyboardInterrupt:
            return 0
        if args.follow:
            process = client.status(args.process_id)
            print(f"-- {process.process_id} is {process.status}; end of log", file=sys.stderr)
    return 0


# -- the parser ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error as one line naming the command and how to get help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_view_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", type=_url_type, help="the server (default: $SENTINEL_URL, else http://127.0.0.1:<port>)")
    p.add_argument("--token", help="bearer token (default: $SENTINEL_TOKEN; dev mode: minted from --data-dir)")
    p.add_argument(
        "--tenant",
        type=_name_type("tenant id", 50),
        default=os.environ.get("SENTINEL_TENANT") or "acme",
        help="tenant of a dev-mode token minted here (default: $SENTINEL_TENANT, else acme)",
    )
    p.add_argument("--timeout", type=_float_type(0, above=True), default=10.0, help="seconds per request (default 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sentinel",
        description="Process Sentinel: real-time monitoring of long-running processes.",
    )
    parser.add_argument("--version", action="version", version=f"sentinel {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--data-dir", help="embedded database directory (default: $SENTINEL_DATA_DIR, else ./sentinel-data)"
        )
        return p

    p = add("serve", "run the HTTP API on Granian and the ingest consumer")
    p.add_argument("--dev", action="store_true", help="dev mode: local signing key, no identity provider")
    p.add_argument("--demo", action="store_true", help="feed realistic demo traffic while serving")
    p.add_argument(
        "--demo-rate", type=_float_type(0, above=True), default=300.0, help="demo events per second (default 300)"
    )
    p.add_argument("--host", help="bind address (default: $SENTINEL_LISTEN_ADDRESS, else 0.0.0.0)")
    p.add_argument("--port", type=_int_type(0, 65535), help="bind port (default: $SENTINEL_LISTEN_PORT, else 8080)")
    p.add_argument(
        "--workers",
        type=_int_type(1, 256),
        help="HTTP workers (default: SENTINEL_WORKER_THREADS - 1 if set, else that budget capped at the cores)",
    )
    p.set_defaults(func=cmd_serve)

    p = add("ingest", "run only the ingest consumer (queue -> core -> store)")
    p.set_defaults(func=cmd_ingest)

    p = add("migrate", "create or upgrade the schema")
    p.add_argument("--oracle", action="store_true", help="run sql/ against Oracle in order")
    p.add_argument("--dry-run", action="store_true", help="say what would be applied; change nothing")
    p.set_defaults(func=cmd_migrate)

    p = add("emit", "queue JSON Lines (one event per line) as raw messages, as a database producer would")
    p.add_argument("file", nargs="?", help="a .jsonl file (default: standard input)")
    p.add_argument("--dry-run", action="store_true", help="judge every line as the ingest will; queue nothing")
    p.set_defaults(func=cmd_emit)

    p = add("simulate", "generate realistic traffic for N processes")
    p.add_argument(
        "-n", "--processes", type=_int_type(1, 10_000_000), default=100, help="processes to simulate (default 100)"
    )
    p.add_argument(
        "--tenant",
        action="append",
        type=_name_type("tenant id", 50),
        help="tenant id (repeat for several; default acme)",
    )
    p.add_argument(
        "--rate", type=_float_type(0), default=0.0, help="events per second (default 0: as fast as possible)"
    )
    p.add_argument(
        "--concurrency", type=_int_type(1, 100_000), default=50, help="processes running at once (default 50)"
    )
    p.add_argument(
        "--failure-rate",
        type=_float_type(0, 1),
        default=0.15,
        help="share of processes that fail, 0 to 1 (default 0.15)",
    )
    p.add_argument(
        "--duplicate-rate",
        type=_float_type(0, 1),
        default=0.01,
        help="share of messages sent twice, 0 to 1 (default 0.01)",
    )
    p.add_argument(
        "--invalid-rate",
        type=_float_type(0, 1),
        default=0.0,
        help="share of broken messages that the ingest dead-letters, 0 to 1 (default 0)",
    )
    p.add_argument("--seed", type=int, help="random seed, for the same processes and events every run")
    p.add_argument(
        "--profile-runs",
        type=_int_type(0, 10_000),
        default=0,
        help="first send N runs of each procedure with a stable duration, then a slow and a failed one (baselines)",
    )
    p.add_argument("--forever", action="store_true", help="start a new wave when one ends")
    p.add_argument("--stdout", action="store_true", help="print JSON Lines instead of queueing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)

    p = add("dead-letters", "list messages the ingest refused, newest first, with their reasons")
    p.add_argument("--json", action="store_true", help='JSON output: {"total": n, "items": [...]}')
    p.add_argument("--limit", type=_int_type(1, 10_000), default=50, help="how many to show, 1 to 10000 (default 50)")
    p.add_argument("--since", type=_since_type, help="only those refused since: 15m, 2h, 1d or an RFC 3339 time")
    p.set_defaults(func=cmd_dead_letters)

    p = add("token", "mint a dev-mode token for a tenant (from the dev server's key)")
    p.add_argument("--tenant", required=True, type=_name_type("tenant id", 50), help="the token's tenant")
    p.add_argument(
        "--role", action="append", type=_name_type("role", 200), help="role (repeat; default: the ingest role)"
    )
    p.add_argument(
        "--ttl",
        type=_int_type(1, 366 * 86_400),
        default=3600,
        help="lifetime in seconds, 1 to 31622400 (default 3600)",
    )
    p.add_argument("--subject", type=_name_type("subject", 200), default="dev-user", help="the token's sub claim")
    p.set_defaults(func=cmd_token)

    p = add("ps", "list processes, newest activity first (like kubectl get)")
    _add_view_options(p)
    p.add_argument("--status", type=_statuses_type, help="comma list of statuses, e.g. RUNNING,STALLED")
    p.add_argument("--type", help="only this process_type")
    p.add_argument("--package", help="only this package_name")
    p.add_argument("--since", type=_since_type, help="only active since: 15m, 2h, 1d or an RFC 3339 time")
    p.add_argument("--limit", type=_int_type(1, 100_000), default=50, help="rows to show (default 50)")
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table", help="output format")
    p.add_argument("-w", "--watch", action="store_true", help="redraw the table live until Ctrl-C")
    p.add_argument(
        "--interval", type=_float_type(0, above=True), default=2.0, help="seconds between redraws (default 2)"
    )
    p.set_defaults(func=cmd_ps)

    p = add("status", "show one process's status document")
    _add_view_options(p)
    p.add_argument("process_id", help="the process id")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(func=cmd_status)

    p = add("logs", "show a process's logs, oldest first; -f follows them live")
    _add_view_options(p)
    p.add_argument("process_id", help="the process id")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="stream new lines until the process ends (first waiting a bounded time for a process not stored yet)",
    )
    p.add_argument(
        "--wait",
        type=_float_type(0),
        metavar="SECONDS",
        help="with -f: how long to wait for a process the server has not stored yet (default 30)",
    )
    p.add_argument("--level", type=_level_type, help="minimum level: TRACE, DEBUG, INFO, WARN, ERROR or FATAL")
    p.add_argument("--since", type=_since_type, help="only lines since: 15m, 2h, 1d or an RFC 3339 time")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format (json: one a line)")
    p.set_defaults(func=cmd_logs)
    return parser


# -- the one place errors become a line -----------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: BaseException) -> tuple[str, int]:
    """The line and exit status for an error that escaped a command."""
    from sentinel.client import ConnectionFailed, SentinelError, Unauthorized
    from sentinel.store.base import StoreError

    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, SettingsError):
        return f"configuration error: {exc}", 2
    if isinstance(exc, ConnectionFailed):
        return f"{exc}; is the server running? Point --url or SENTINEL_URL at it", 1
    if isinstance(exc, Unauthorized):
        return f"{exc}; pass a token the server accepts with --token or SENTINEL_TOKEN", 1
    if isinstance(exc, SentinelError):
        return str(exc), 1
    if isinstance(exc, StoreError):
        return f"store error: {exc}", 1
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        return (f"{exc.filename}: {what}" if exc.filename else what), 1
    if isinstance(exc, ValueError):
        return str(exc), 1
    return f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)", 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``sentinel ps | head``): stop quietly, and keep the interpreter's final
        # flush of stdout from complaining about the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        line, code = _describe(exc)
        prog = f"sentinel {args.command}" if getattr(args, "command", None) else "sentinel"
        print(f"{prog}: {_one_line(line)}", file=sys.stderr)
        return code
