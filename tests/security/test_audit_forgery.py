"""Issue 26 finding 7: the audit trail must not seal what a database writer inserts, and a
database writer must not be able to hide a deleted tail (or a rewritten chain) by deleting the
checkpoints in the database too: `ca-service audit verify` checks, by default, against the
checkpoints the service also appends to a file the database writer cannot reach."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.audit import trail as audit
from ca_service.store.models import AuditEvent
from tests.test_audit_checkpoints import _chain, _cli, _events, _sql, _verify_fails


def test_a_fabricated_approval_inserted_by_a_database_writer_is_never_sealed_and_verify_fails(ctx):
    _events(ctx, 3)
    audit_checkpoints.create(ctx)
    with ctx.engine.begin() as conn:  # the database writer's fabricated second-operator approval
        forged_id = conn.execute(
            insert(AuditEvent)
            .values(
                occurred_at=ctx.clock.now() - timedelta(days=6), client_name="console:op2", acting_login_id=None,
                action="approval.approved", target_type="approval", target_id="17",
                details='{"approved_by":"console:op2","requested_by":"console:op1","ticket":"HD-9"}', request_id=None,
            )
            .returning(AuditEvent.id)
        ).scalar_one()  # fmt: skip
    audit.seal_pending(ctx, wait=True)
    _events(ctx, 2, start=3)  # later genuine events are still sealed
    with ctx.sessions() as s:
        forged = s.scalars(select(AuditEvent).where(AuditEvent.id == forged_id)).one()
    assert forged.chain_index is None  # refused by the sealer
    assert len(_chain(ctx)) == 5
    err = _verify_fails()
    assert f"event {forged_id}" in err and "authenticat" in err, err


def test_deleting_the_tail_together_with_its_checkpoints_fails_verify_by_default(ctx):
    _events(ctx, 10)
    audit_checkpoints.create(ctx)
    _events(ctx, 5, start=10)
    audit_checkpoints.create(ctx)
    assert _cli("audit", "verify").returncode == 0
    _sql(ctx, "DELETE FROM audit_events WHERE chain_index > 10")
    _sql(ctx, "DELETE FROM audit_checkpoints WHERE seq = 2")
    err = _verify_fails()  # no --checkpoint FILE
    assert "checkpoint 2 is missing from the database" in err and "5 event(s) deleted from chain index 11" in err, err


def test_an_edit_rehashed_with_the_later_checkpoints_deleted_fails_verify_by_default(ctx):
    for i in range(4):
        _events(ctx, 1, start=i)
        audit_checkpoints.create(ctx)
    victim = _chain(ctx)[2]
    _sql(ctx, "UPDATE audit_events SET details = :d WHERE id = :id", d='{"n":"rewritten"}', id=victim.id)
    prev = audit.GENESIS
    for ev in _chain(ctx):
        h = audit.event_hash(ev, ev.chain_index, prev)
        _sql(ctx, "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id", p=prev, h=h, id=ev.id)
        prev = h
    _sql(ctx, "DELETE FROM audit_checkpoints WHERE seq >= 3")  # the ones that pinned the victim
    err = _verify_fails()
    assert f"event {victim.id}" in err, err
