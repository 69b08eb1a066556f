"""Helpers for the background-work tests: the project's RQ queues, a real `ca-service worker
--burst` run, and bulk rows for the scan (certificates the test places exactly in time)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue
from sqlalchemy import insert, select

from ca_service.context import ServiceContext
from ca_service.store.models import Certificate, CertificateAuthority, Organization, User
from tests.support.cli import run_cli
from tests.support.environment import TestEnvironment, assert_owned_redis

QUEUES = ("crl", "mail", "default")


def empty_queues(redis_url: str) -> None:
    """Drop jobs left by earlier tests (their notice ids may be reused by this test's rows)."""
    assert_owned_redis(redis_url)  # never FLUSHDB a database this run did not claim or create
    conn = Redis.from_url(redis_url)
    # The whole database is this test worker's own (tests/support/environment.py claims it): drop
    # queued jobs and also the registries and job hashes, which Queue.empty() leaves. Notice email
    # jobs have a stable id (notice-email-<id>) and ids restart per test, so an earlier test's
    # scheduled retry of notice-email-1 would otherwise run in this test's worker.
    conn.flushdb()
    conn.close()


def queued_count(redis_url: str, name: str) -> int:
    conn = Redis.from_url(redis_url)
    try:
        return Queue(name, connection=conn).count
    finally:
        conn.close()


def run_worker_burst(test_env: TestEnvironment, **env: str) -> str:
    """A real `ca-service worker --burst`: runs what is queued, then exits. Returns its output."""
    out = run_cli("worker", "--burst", env=test_env.env(**env))
    return out.stdout + out.stderr


def issuing_ca_id(ctx: ServiceContext) -> int:
    with ctx.sessions() as s:
        ca_id = s.scalars(
            select(CertificateAuthority.id)
            .where(CertificateAuthority.kind == "issuing", CertificateAuthority.active.is_(True))
            .order_by(CertificateAuthority.id.desc())
        ).first()
    assert ca_id is not None
    return ca_id


def insert_certificates(ctx: ServiceContext, org_id: str, rows: list[dict[str, Any]], *, der: bytes = b"\x30\x00") -> list[str]:
    """Certificate rows (and their users) written directly: each row gives login_id, not_after,
    optionally email, revoked_at, revocation_reason. Returns the serials in order. The DER is a
    placeholder (or one real certificate's, for code that parses it): these rows serve the scan,
    the screen notices and revocation, never a signature check."""
    now = ctx.clock.now()
    issuer_id = issuing_ca_id(ctx)
    serials = [format(secrets.randbits(127) | 1 << 127, "x") for _ in rows]  # as serial_hex: no leading zero
    with ctx.engine.begin() as conn:
        if conn.execute(select(Organization.org_id).where(Organization.org_id == org_id)).first() is None:
            conn.execute(
                insert(Organization).values(
                    org_id=org_id, name=org_id, login_method="certificate", created_at=now, updated_at=now
                )
            )
        conn.execute(
            insert(User),
            [
                {"login_id": r["login_id"], "org_id": org_id, "role": "general", "email": r.get("email"),
                 "created_at": now, "updated_at": now}
                for r in rows
            ],
        )  # fmt: skip
        conn.execute(
            insert(Certificate),
            [
                {"serial": serial, "issuer_id": issuer_id, "login_id": r["login_id"], "org_id": org_id,
                 "current_login_id": None if r.get("revoked_at") else r["login_id"],
                 "spki_sha256": secrets.token_hex(32), "fingerprint_sha256": secrets.token_hex(32),
                 "key_description": "EC P-256", "issued_at": now, "not_before": now, "not_after": r["not_after"],
                 "der": der, "revoked_at": r.get("revoked_at"), "revocation_reason": r.get("revocation_reason")}
                for serial, r in zip(serials, rows, strict=True)
            ],
        )  # fmt: skip
    return serials


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
