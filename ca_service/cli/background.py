"""`ca-service worker`, `scheduler`, `crl publish|show`, `notices scan|list`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import click
from redis.exceptions import RedisError

from ca_service.cli.common import (
    cli_actor,
    context,
    echo_json,
    echo_table,
    fail,
    handle_errors,
    prepare_metrics_dir,
    reading_context,
)
from ca_service.cli.health import DEFAULT_WORKER_HEARTBEAT_SECONDS
from ca_service.cli.health import record as record_role
from ca_service.constants import QUEUE_NAMES
from ca_service.services.crl import publication as crl_publication
from ca_service.services.notices import scan as notices
from config.logging import configure as configure_logging

log = logging.getLogger("ca_service.cli")


def _stop_while_starting() -> None:
    """SIGTERM before RQ has installed its own handlers (still starting: imports, re-exec,
    connecting) is a clean stop with status 0, not death by signal."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


@click.command()
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@click.option(
    "--queues",
    default=",".join(QUEUE_NAMES),
    show_default=True,
    help="Comma-separated queues, in priority order. A slow webhook receiver then never delays a CRL or an email: "
    "run one worker with --queues crl,mail,default and another with --queues webhooks (as `dev` does).",
)
@handle_errors
def worker(burst: bool, queues: str) -> None:
    """Run an RQ worker on the queues crl, mail, default and webhooks (SIGTERM: finish the job, then stop)."""
    _stop_while_starting()
    from workers.logging_context import ContextWorker as Worker

    QUEUES = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in QUEUES if q not in QUEUE_NAMES]
    if unknown or not QUEUES:
        fail(f"--queues: unknown queue {', '.join(unknown) or '(none)'}; the queues are {', '.join(QUEUE_NAMES)}")

    ctx = context()
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # RQ forks a work horse per job: its counters survive only in prometheus-client's
        # multiprocess mode, which must be chosen before the metrics are created: re-exec.
        prepare_metrics_dir(ctx.settings.data_dir, "worker")
        argv = [
            sys.executable,
            "-m",
            "ca_service.cli.main",
            "worker",
            "--queues",
            ",".join(QUEUES),
            *(["--burst"] if burst else []),
        ]
        os.execv(sys.executable, argv)  # noqa: S606
    configure_logging(ctx.settings.log_level)
    heartbeat = _heartbeat_seconds()
    port = os.environ.get("CA_WORKER_METRICS_PORT")
    if port:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(int(port), registry=registry)
        log.info("worker metrics on :%s/metrics", port)
    log.info("worker listening on %s", ", ".join(QUEUES))  # JSON lines only: the Redis URL may hold a password
    while True:  # Redis going away is an outage to wait out, not a reason to exit
        rq_worker: Worker | None = None
        try:
            # RQ heartbeats every worker_ttl - 15 s while idle and every job_monitoring_interval
            # while a job runs: both every `heartbeat` s, which `ca-service healthcheck` watches
            rq_worker = Worker(list(QUEUES), connection=ctx.redis(), worker_ttl=heartbeat + 15, job_monitoring_interval=heartbeat)
            record_role("worker", name=rq_worker.name, heartbeat_seconds=heartbeat)
            rq_worker.work(burst=burst, with_scheduler=True, logging_level=ctx.settings.log_level)
            return
        except RedisError as exc:
            if rq_worker is not None and rq_worker.stop_requested:  # SIGTERM reached RQ's handler; its teardown needed Redis
                return
            # RQ's work() installed its own SIGTERM handler (a "warm shutdown" request that nothing
            # reads once work() has returned): ours again, so SIGTERM while waiting stops at once.
            _stop_while_starting()
            log.warning("worker: Redis unavailable (%s); retrying in 2 s", type(exc).__name__)
            time.sleep(2)


def _heartbeat_seconds() -> int:
    raw = os.environ.get("CA_WORKER_HEARTBEAT_SECONDS") or str(DEFAULT_WORKER_HEARTBEAT_SECONDS)
    if not raw.isdigit() or not 1 <= int(raw) <= 300:
        fail(f"CA_WORKER_HEARTBEAT_SECONDS={raw!r} must be a whole number of seconds from 1 to 300")
    return int(raw)


def _remember_stop(periodic: Any, stop: threading.Event) -> None:
    """RQ's CronScheduler turns SIGTERM into StopRequested, then registers its death in Redis: with
    Redis down that raises RedisError and the stop would look like an outage. Note it first."""
    rq_request_stop = periodic._request_stop

    def request_stop(signum: int, frame: object) -> None:
        stop.set()
        rq_request_stop(signum, frame)

    periodic._request_stop = request_stop  # start() installs self._request_stop as the handler


@click.command()
@handle_errors
def scheduler() -> None:
    """Enqueue the periodic jobs: outbox sweep, CRL republication, daily expiry scan, OCSP rotation."""
    _stop_while_starting()
    from workers.scheduler import build_scheduler

    configure_logging(context().settings.log_level)
    stop = threading.Event()
    while True:  # as the worker: wait out a Redis outage; SIGTERM ends start() normally
        try:
            periodic = build_scheduler()
            record_role("scheduler", name=periodic.name)
            _remember_stop(periodic, stop)
            log.info("scheduler running %d periodic jobs", len(periodic.get_jobs()))
            periodic.start()
            return
        except RedisError as exc:
            if stop.is_set():  # SIGTERM reached RQ's handler; start()'s register_death needed Redis
                return
            _stop_while_starting()  # as the worker: SIGTERM while waiting out Redis stops at once
            log.warning("scheduler: Redis unavailable (%s); retrying in 2 s", type(exc).__name__)
            time.sleep(2)


@click.group("crl")
def crl_group() -> None:
    """Certificate revocation lists."""


@crl_group.command("publish")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def crl_publish(as_json: bool) -> None:
    """Publish the issuing and root CRLs now (synchronously) and print the result."""
    results = crl_publication.publish(context(), force=True, actor=cli_actor())
    if as_json:
        echo_json(results)
        return
    echo_table(
        ["ca", "crl_number", "this_update", "next_update", "entries"],
        [[r.ca_name, r.crl_number, r.this_update, r.next_update, r.entries] for r in results],
    )


@crl_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def crl_show(as_json: bool) -> None:
    """Show the latest issuing and root CRLs."""
    ctx = reading_context()
    docs = [crl_publication.latest_crl(ctx, name) for name in ("issuing", "root")]
    rows = [
        {
            "ca": d.ca_name,
            "crl_number": d.crl_number,
            "this_update": d.this_update,
            "next_update": d.next_update,
            "entries": d.entries,
        }
        for d in docs
    ]
    if as_json:
        echo_json(rows)
        return
    echo_table(list(rows[0]), [list(r.values()) for r in rows])


@click.group("notices")
def notices_group() -> None:
    """The 40-day certificate expiry notices."""


@notices_group.command("scan")
@click.option("--as-of", type=click.DateTime(), default=None, help="Scan as of this UTC date/time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def notices_scan(as_of: datetime | None, as_json: bool) -> None:
    """Create the notices due now (or as of --as-of) and queue their emails."""
    ctx = context()
    when = as_of.replace(tzinfo=UTC) if as_of else None
    with click.progressbar(length=0, label="scanning certificates", show_pos=True, file=None) as bar:
        result = notices.scan(ctx, when, progress=bar.update)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"as of {result.as_of:%Y-%m-%dT%H:%M:%SZ}: {result.examined} certificates due, "
        f"{result.created} notices created, {result.emails_queued} emails queued"
    )
