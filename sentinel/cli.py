"""The ``sentinel`` command (SPEC section 6)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel import __version__
from sentinel.config import Settings, SettingsError, load_settings, require_identity_provider

log = logging.getLogger("sentinel")


def _settings(args: argparse.Namespace, *, dev: bool | None = None) -> Settings:
    settings = load_settings(dev_mode=dev)
    if getattr(args, "data_dir", None):
        from dataclasses import replace

        settings = replace(settings, data_dir=Path(args.data_dir))
    return settings


def _store(settings: Settings) -> Any:
    from sentinel.store import open_store

    return open_store(settings)


# migrate ---------------------------------------------------------------------------------------
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
        store = _store(settings)
        applied = store.migrate()
        done = f"applied {', '.join(applied)}" if applied else "schema is up to date"
        print(f"oracle {settings.oracle_connect_string}: {done}")
        store.close()
        return 0
    settings = _settings(args)
    store = _store(settings)
    if args.dry_run:
        print("dry run: nothing applied")
        return 0
    applied = store.migrate()
    where = settings.sqlite_path if settings.backend == "sqlite" else settings.oracle_connect_string
    print(f"{settings.backend} {where}: " + (f"applied {', '.join(applied)}" if applied else "schema is up to date"))
    store.close()
    return 0


# emit ------------------------------------------------------------------------------------------
def cmd_emit(args: argparse.Namespace) -> int:
    from sentinel.simulate import priority_of

    settings = _settings(args)
    store = _store(settings)
    if settings.backend == "sqlite":
        store.migrate()
    stream = sys.stdin.buffer if args.file in (None, "-") else open(args.file, "rb")  # noqa: SIM115
    sent = 0
    chunk: list[bytes] = []
    try:
        for line in stream:
            payload = line.strip()
            if not payload:
                continue
            chunk.append(payload)
            if len(chunk) >= 1000:
                sent += store.enqueue(chunk, [priority_of(p) for p in chunk])
                chunk = []
        if chunk:
            sent += store.enqueue(chunk, [priority_of(p) for p in chunk])
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        store.close()
    print(f"queued {sent} message(s)", file=sys.stderr)
    return 0


# simulate --------------------------------------------------------------------------------------
def profile_runs_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 10000, got {text!r}")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    from sentinel.simulate import ProgressBar, SimulationConfig, estimate_total, priority_of, run

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

        close = sys.stdout.flush
    else:
        settings = _settings(args)
        store = _store(settings)
        if settings.backend == "sqlite":
            store.migrate()

        def send(chunk: list[bytes]) -> None:
            store.enqueue(chunk, [priority_of(p) for p in chunk])

        close = store.close
    chunk = 500 if args.rate <= 0 else max(1, min(500, int(args.rate / 10)))
    try:
        while True:
            bar = None if args.quiet else ProgressBar(estimate_total(cfg))
            sent = run(cfg, send, chunk=chunk, rate=args.rate, progress=bar)
            if bar:
                bar.close()
            if not args.forever:
                break
            cfg.seed = None
    except KeyboardInterrupt:
        pass
    finally:
        close()
    if not args.forever:
        print(f"sent {sent} message(s) for {cfg.processes} process(es)", file=sys.stderr)
    return 0


# dead letters ----------------------------------------------------------------------------------
def cmd_dead_letters(args: argparse.Namespace) -> int:
    import msgspec

    settings = _settings(args)
    store = _store(settings)
    if settings.backend == "sqlite":
        store.migrate()
    try:
        rows = store.dead_letters(args.after, args.limit)
    finally:
        store.close()
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(rows) + b"\n")
        return 0
    if not rows:
        print("no dead letters")
        return 0
    for row in rows:
        payload = row.payload if len(row.payload) <= 120 else row.payload[:117] + "..."
        print(f"#{row.id}  {row.dead_at.isoformat()}  {row.code}: {row.reason}\n    {payload}")
    return 0


# token -----------------------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    from sentinel.security import DevAuthority

    settings = _settings(args, dev=True)
    authority = DevAuthority(settings.data_dir, tenant_claim=settings.tenant_claim)
    roles = args.role if args.role else [settings.ingest_role]
    print(authority.mint(args.tenant, roles=roles, ttl_seconds=args.ttl, subject=args.subject))
    return 0


# ingest ----------------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from sentinel.ingest.service import run_ingest

    settings = _settings(args)
    if settings.backend == "sqlite":
        _store(settings).migrate()
    return run_ingest(settings)


# serve -----------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from sentinel.serve import serve

    settings = _settings(args, dev=True if args.dev else None)
    require_identity_provider(settings)
    return serve(
        settings, demo=args.demo, demo_rate=args.demo_rate, port=args.port, host=args.host, workers=args.workers
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel",
        description="Process Sentinel: real-time monitoring of long-running processes.",
    )
    parser.add_argument("--version", action="version", version=f"sentinel {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data-dir", help="embedded database directory (default: $SENTINEL_DATA_DIR)")
        return p

    p = add("serve", "run the HTTP API on Granian and the ingest consumer")
    p.add_argument("--dev", action="store_true", help="dev mode: local signing key, no identity provider")
    p.add_argument("--demo", action="store_true", help="feed realistic demo traffic while serving")
    p.add_argument("--demo-rate", type=float, default=300.0, help="demo events per second (default 300)")
    p.add_argument("--host", help="bind address (default: $SENTINEL_LISTEN_ADDRESS)")
    p.add_argument("--port", type=int, help="bind port (default: $SENTINEL_LISTEN_PORT)")
    p.add_argument("--workers", type=int, help="HTTP workers (default: SENTINEL_WORKER_THREADS - 1)")
    p.set_defaults(func=cmd_serve)

    p = add("ingest", "run only the ingest consumer (queue -> core -> store)")
    p.set_defaults(func=cmd_ingest)

    p = add("migrate", "create or upgrade the schema")
    p.add_argument("--oracle", action="store_true", help="run sql/ against Oracle in order")
    p.add_argument("--dry-run", action="store_true", help="print what would run; change nothing")
    p.set_defaults(func=cmd_migrate)

    p = add("emit", "queue JSON Lines (one event per line) as raw messages, as a database producer would")
    p.add_argument("file", nargs="?", help="a .jsonl file (default: standard input)")
    p.set_defaults(func=cmd_emit)

    p = add("simulate", "generate realistic traffic for N processes")
    p.add_argument("-n", "--processes", type=int, default=100, help="processes to simulate (default 100)")
    p.add_argument("--tenant", action="append", help="tenant id (repeat for several; default acme)")
    p.add_argument("--rate", type=float, default=0.0, help="events per second (default: as fast as possible)")
    p.add_argument("--concurrency", type=int, default=50, help="processes running at once (default 50)")
    p.add_argument("--failure-rate", type=float, default=0.15)
    p.add_argument("--duplicate-rate", type=float, default=0.01)
    p.add_argument("--invalid-rate", type=float, default=0.0, help="share of broken messages (dead letters)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--profile-runs",
        type=profile_runs_argument,
        default=0,
        help="first send N runs of each procedure with a stable duration, then a slow and a failed one (baselines)",
    )
    p.add_argument("--forever", action="store_true", help="start a new wave when one ends")
    p.add_argument("--stdout", action="store_true", help="print JSON Lines instead of queueing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)

    p = add("dead-letters", "list messages the ingest refused, with their reasons")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--after", type=int, default=0, help="only ids greater than this")
    p.set_defaults(func=cmd_dead_letters)

    p = add("token", "mint a dev-mode token for a tenant")
    p.add_argument("--tenant", required=True)
    p.add_argument("--role", action="append", help="role (repeat; default: the ingest role)")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.add_argument("--subject", default="dev-user")
    p.set_defaults(func=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"sentinel: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
