"""Limits measured in the same run as an HTTP benchmark, to say how far the service is from what
this machine can do at all:

- the issuance transaction alone: the service's own compiled statements (lock the user row,
  insert the certificate with its audit event in one statement, commit: the same four round trips) driven by
  raw psycopg from as many processes as gunicorn has workers: no HTTP, no Flask, no SQLAlchemy
  at run time, no signing;
- `/healthz` through gunicorn: one Flask request that touches neither the database nor a key.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from bench.common import BenchEnv, WrkResult, run_wrk

HEALTHZ_LUA = 'wrk.method = "GET"\n'


def _compiled_sql() -> tuple[str, str, list[str]]:
    from ca_service.store import certificates, users

    dialect = postgresql.dialect()
    lock = str(users._LOCK_FOR_ISSUANCE.compile(dialect=dialect))
    cert_keys = list(certificates._INSERT_COLUMNS)
    insert = str(certificates._INSERT_WITH_EVENT.compile(dialect=dialect))  # the certificate and its audit event
    return lock, insert, cert_keys


def _run_transactions(job: tuple[str, list[str], int]) -> int:
    from ca_service.store.audit_log import EVENT_COLUMNS

    dsn, logins, issuer_id = job
    lock, insert_sql, cert_keys = _compiled_sql()
    now = datetime.now(UTC).replace(microsecond=0)
    der = os.urandom(650)  # the size of an issued client certificate
    with psycopg.connect(dsn) as conn:
        for login in logins:
            row = conn.execute(lock, {"login_id": login}, prepare=True).fetchone()
            assert row is not None, login
            values: dict[str, Any] = dict.fromkeys(cert_keys)
            values.update(
                serial=secrets.token_hex(20), issuer_id=issuer_id, login_id=login, org_id=row[1], current_login_id=login,
                spki_sha256=secrets.token_hex(32), fingerprint_sha256=secrets.token_hex(32), key_description="EC P-256",
                issued_at=now, not_before=now - timedelta(minutes=5), not_after=now + timedelta(days=365), der=der,
            )  # fmt: skip
            event = dict.fromkeys(EVENT_COLUMNS)
            event.update(occurred_at=now, client_name="floor", action="certificate.issued", target_type="certificate",
                         target_id=values["serial"], details="{}")  # fmt: skip
            params = {f"c_{k}": v for k, v in values.items()} | {f"e_{k}": v for k, v in event.items()}
            conn.execute(insert_sql, params, prepare=True)
            conn.commit()
    return len(logins)


def issuance_transaction_floor(env: BenchEnv, prefix: str, count: int, *, processes: int) -> float:
    """Issuance transactions per second with everything but the database taken away, for the
    already loaded users `prefix`0..`prefix`{count - 1}."""
    dsn = make_url(env.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    logins = [f"{prefix}{i}" for i in range(count)]
    slices = processes * 4  # small slices, one at a time: every process stays busy to the end
    issuer_id = env.issuing_ca_id()
    jobs = [(dsn, logins[s::slices], issuer_id) for s in range(slices)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_run_transactions, [(dsn, [], 0)] * processes, chunksize=1)  # processes started and imported
        start = time.perf_counter()
        done = sum(pool.map(_run_transactions, jobs, chunksize=1))
        return done / (time.perf_counter() - start)


def healthz_run(env: BenchEnv, base: str, *, seconds: int, connections: int, threads: int = 2) -> WrkResult:
    """`/healthz` on the server under test, same connections and wrk threads: the floor every
    endpoint's ratio is taken against (issue 16)."""
    script = Path(env.workdir) / "healthz.lua"
    script.write_text(HEALTHZ_LUA)
    server = env.processes[-1] if env.processes else None
    return run_wrk(base + "/healthz", script, seconds=seconds, connections=connections, threads=threads, server=server)


def ratio(rate: float, floor: float) -> str:
    return f"{100 * rate / floor:.0f}%" if floor else "nan"


def interleaved(rounds: int, runs: list[tuple[str, Callable[[], WrkResult]]]) -> list[list[object]]:
    """`rounds` rounds of every run in turn, the first being the floor (`/healthz`): one row per run
    with the cells of its median-rate round and the medians of its per-round ratios to the floor
    (throughput, and service CPU per request: `cpu_ratio`)
    (on a shared machine the load of others drifts within seconds; interleaving puts the floor and
    the path under the same drift)."""
    results: dict[str, list[WrkResult]] = {label: [] for label, _ in runs}
    for _ in range(rounds):
        for label, run in runs:
            results[label].append(run())
    floor = results[runs[0][0]]
    rows: list[list[object]] = []
    for label, found in results.items():
        ratios = [
            r.requests_per_second / f.requests_per_second if f.requests_per_second else 0.0
            for r, f in zip(found, floor, strict=True)
        ]
        cpu = [f.service_cpu_ms / r.service_cpu_ms if r.service_cpu_ms else 0.0 for r, f in zip(found, floor, strict=True)]
        middle = sorted(found, key=lambda r: r.requests_per_second)[len(found) // 2]
        rows.append([label, *middle.cells(), f"{100 * statistics.median(ratios):.0f}%", f"{100 * statistics.median(cpu):.0f}%"])
    return rows


def cpu_ratio(result: WrkResult, floor: WrkResult) -> str:
    """The floor's service CPU per request over the path's: the throughput ratio the service would
    reach on cores of its own (wrk and other users of the machine left out)."""
    return f"{100 * floor.service_cpu_ms / result.service_cpu_ms:.0f}%" if result.service_cpu_ms else "nan"
