"""Signed audit checkpoints against a malicious database administrator (raw SQL on the real
database): an edited event, a deleted one, a deleted tail, a rewritten and re-hashed chain, a
forged or deleted checkpoint. `ca-service audit verify` detects each and names where."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.audit import trail as audit
from ca_service.store.db import transaction
from ca_service.store.models import AuditEvent
from tests.conftest import SYSTEM
from tests.support.pki import openssl


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ca_service.cli.main", *args],
        capture_output=True, text=True, env=dict(os.environ), check=False, timeout=120,
    )  # fmt: skip


def _events(ctx, n: int, start: int = 0) -> None:
    with transaction(ctx.sessions) as s:
        for i in range(start, start + n):
            audit.record(s, ctx, SYSTEM, "test.event", "test", str(i), n=i)
    audit.seal_pending(ctx, wait=True)


def _chain(ctx) -> list[AuditEvent]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.chain_index.is_not(None)).order_by(AuditEvent.chain_index)))


def _sql(ctx, statement: str, **params) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text(statement), params)


def _stored(ctx):  # type: ignore[no-untyped-def]
    from ca_service.store import audit_checkpoints as store
    from ca_service.store.db import reading

    with reading(ctx.sessions) as session:
        return store.all_against_chain(session), store.sealed_count(session)


def _verify_fails(*extra: str) -> str:
    out = _cli("audit", "verify", *extra)
    assert out.returncode == 1, (out.stdout, out.stderr)
    return out.stderr


def test_checkpoints_are_served_signed_and_verifiable_with_openssl(api, ctx, tmp_path: Path):
    _events(ctx, 3)
    first = audit_checkpoints.create(ctx)
    _events(ctx, 2, start=3)
    made = _cli("audit", "checkpoint")
    assert made.returncode == 0, made.stderr
    second = json.loads(made.stdout)
    assert (first["seq"], second["seq"]) == (1, 2) and (first["event_count"], second["event_count"]) == (3, 5)
    assert second["head_hash"] == _chain(ctx)[-1].hash

    page = api.get("/v1/audit-checkpoints", role="auditor")
    assert page.status == 200, page
    assert [c["seq"] for c in page.json["items"]] == [2, 1]  # newest first
    assert page.json["items"][0] == second
    assert api.get("/v1/audit-checkpoints", role="operator", params={"limit": 1}).json["next_before_seq"] == 2
    assert api.get("/v1/audit-checkpoints", role="frontend").code == "forbidden"

    # a third party verifies with nothing but the served public key and openssl
    key = page.json["keys"][0]
    assert key["key_id"] == second["key_id"] == "audit-1"
    (tmp_path / "pub.pem").write_text(key["public_key_pem"])
    payload = {k: second[k] for k in ("seq", "event_count", "head_hash", "signed_at")}
    (tmp_path / "payload").write_bytes(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    (tmp_path / "sig").write_bytes(base64.b64decode(second["signature"]))
    ok = openssl("dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "payload", cwd=tmp_path)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stderr
    (tmp_path / "payload").write_bytes(json.dumps({**payload, "event_count": 4}, sort_keys=True, separators=(",", ":")).encode())
    assert openssl("dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "payload", cwd=tmp_path).returncode != 0

    out = _cli("audit", "verify")
    assert out.returncode == 0 and "against 2 signed checkpoints" in out.stdout, out


def test_each_checkpoint_is_logged_as_an_external_copy(ctx, caplog):
    _events(ctx, 1)
    with caplog.at_level(logging.INFO, logger="ca_service.audit.checkpoint"):
        cp = audit_checkpoints.create(ctx)
    logged = [r for r in caplog.records if r.name == "ca_service.audit.checkpoint"]
    assert len(logged) == 1 and logged[0].audit_checkpoint == cp and json.dumps(cp, sort_keys=True) in logged[0].getMessage()


def test_scheduled_job_signs_only_when_events_were_written(ctx):
    from ca_service.services.background.jobs import audit_checkpoint_job

    assert audit_checkpoint_job() is None  # empty chain: nothing to sign
    _events(ctx, 2)
    assert audit_checkpoint_job()["event_count"] == 2
    assert audit_checkpoint_job() is None  # head unchanged
    _events(ctx, 1, start=2)
    assert audit_checkpoint_job()["seq"] == 2


def test_edited_event_is_named(ctx):
    _events(ctx, 5)
    audit_checkpoints.create(ctx)
    target = _chain(ctx)[2]
    _sql(ctx, "UPDATE audit_events SET details = :d WHERE id = :id", d='{"n":99}', id=target.id)
    err = _verify_fails()
    assert f"at event {target.id}" in err and "edited" in err, err


def test_event_deleted_in_the_middle_is_named(ctx):
    _events(ctx, 5)
    audit_checkpoints.create(ctx)
    chain = _chain(ctx)
    _sql(ctx, "DELETE FROM audit_events WHERE id = :id", id=chain[2].id)
    err = _verify_fails()
    assert f"at event {chain[3].id}" in err and "chain index 4 where 3 was expected (event missing)" in err, err


@pytest.mark.parametrize("deleted", [1, 50])
def test_deleted_tail_is_a_shortfall_against_the_checkpoint(ctx, deleted):
    _events(ctx, 60)
    audit_checkpoints.create(ctx)
    assert _cli("audit", "verify").returncode == 0
    before = audit.verify_chain(ctx)
    tail = _chain(ctx)[-deleted:]
    _sql(ctx, f"DELETE FROM audit_events WHERE chain_index > {60 - deleted}")  # noqa: S608
    assert audit.verify_chain(ctx).ok and before.ok  # the bare hash chain cannot see it
    err = _verify_fails()
    assert f"the chain holds {60 - deleted} events but checkpoint 1 signed 60" in err, err
    assert f"{deleted} event(s) deleted from chain index {tail[0].chain_index}" in err, err


def test_rewritten_and_rehashed_chain_is_detected_naming_the_event(ctx):
    for i in range(6):  # a checkpoint after every event: the rewrite is pinned to one event
        _events(ctx, 1, start=i)
        audit_checkpoints.create(ctx)
    chain = _chain(ctx)
    victim = chain[3]
    # the DBA edits one event, then recomputes every hash with the published algorithm
    _sql(ctx, "UPDATE audit_events SET details = :d WHERE id = :id", d='{"n":"rewritten"}', id=victim.id)
    prev = audit.GENESIS
    for ev in _chain(ctx):
        h = audit.event_hash(ev, ev.chain_index, prev)
        _sql(ctx, "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id", p=prev, h=h, id=ev.id)
        prev = h
    # consistent again as a bare hash chain, but the event's MAC (a key the DBA lacks) is not
    bare = audit.verify_chain(ctx)
    assert not bare.ok and bare.broken_event_id == victim.id and "authenticator" in (bare.problem or "")
    err = _verify_fails()
    assert f"at event {victim.id}" in err and "authenticator" in err, err
    # the checkpoints pin it too (what caught it before events carried a MAC)
    verdict = audit_checkpoints._verify_stored(ctx, *_stored(ctx))
    assert not verdict.ok and "rewritten" in (verdict.problem or "") and "differs from checkpoint 4" in (verdict.problem or "")


def test_forged_or_deleted_checkpoints_and_an_external_copy(ctx, tmp_path: Path):
    _events(ctx, 10)
    audit_checkpoints.create(ctx)
    kept = audit_checkpoints.create(ctx, only_if_advanced=False)
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(kept))
    assert _cli("audit", "verify", "--checkpoint", str(saved)).returncode == 0

    # forging: the DBA moves a checkpoint to a shorter chain without the audit key
    _sql(ctx, "UPDATE audit_checkpoints SET event_count = 9 WHERE seq = 2")
    assert "checkpoint 2 has a bad signature" in _verify_fails()
    # hiding: delete the tail AND the newest checkpoint; the database alone still looks fine...
    _sql(ctx, "DELETE FROM audit_checkpoints WHERE seq = 2")
    _sql(ctx, "DELETE FROM audit_events WHERE chain_index > 7")
    _sql(ctx, "DELETE FROM audit_checkpoints")
    assert audit_checkpoints.verify(ctx, use_file=False).ok
    # ...but not against the service's own file of checkpoints (issue 26), nor the copy kept elsewhere
    assert "checkpoint file's newest, checkpoint 2 is missing from the database" in _verify_fails()
    ctx.settings.audit_checkpoint_path.unlink()
    err = _verify_fails("--checkpoint", str(saved))
    assert "checkpoint 2 is missing from the database" in err and "3 event(s) deleted from chain index 8" in err, err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**kept, "event_count": 7}))
    assert "bad signature" in _verify_fails("--checkpoint", str(bad))


def test_checkpoint_seq_gap_is_detected(ctx):
    _events(ctx, 2)
    for _ in range(3):
        audit_checkpoints.create(ctx)
    _sql(ctx, "DELETE FROM audit_checkpoints WHERE seq = 2")
    assert "checkpoint 2 is missing (deleted)" in _verify_fails()
