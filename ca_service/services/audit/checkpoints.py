"""Signed audit checkpoints (DESIGN §4 "Audit"): the hash chain alone cannot show a deleted tail
or a chain rewritten and re-hashed with the public algorithm; a signature over its head can.

A checkpoint signs `{seq, event_count, head_hash, signed_at}` (signed_payload: canonical JSON,
sorted keys, no spaces, UTF-8) with the audit key of the key backend (`audit-1`, created by
`init`; in pkcs11 mode it never leaves the HSM). The scheduler takes one every minute while
events are written; `ca-service audit checkpoint` takes one at once. Each is also logged (JSON on
the `ca_service.audit.checkpoint` logger): an external copy a database administrator cannot edit.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ca_service.context import ServiceContext
from ca_service.errors import InvalidInput, Unavailable
from ca_service.pki.keys import KeyUnavailable
from ca_service.pki.signer import Signer
from ca_service.services.audit import checkpoint_file as audit_sink
from ca_service.services.audit import trail as audit
from ca_service.store import audit_checkpoints as store
from ca_service.store.db import Tx, reading, transaction
from ca_service.store.models import AuditCheckpoint
from ca_service.timefmt import rfc3339

AUDIT_KEY_REF = "audit-1"
AUDIT_KEY_ALGORITHM = "ec-p256"
log = logging.getLogger("ca_service.audit.checkpoint")
_PUBLIC_KEYS: dict[str, list[dict[str, str]]] = {}  # per process: the key never changes under a running process


def ensure_audit_key(ctx: ServiceContext) -> bool:
    """Create the audit key if absent (called by `init`). True if it was created."""
    if ctx.keys.exists(AUDIT_KEY_REF):
        return False
    ctx.keys.generate(AUDIT_KEY_REF, AUDIT_KEY_ALGORITHM)
    return True


def _signer(ctx: ServiceContext, key_id: str = AUDIT_KEY_REF) -> Signer:
    try:
        return ctx.keys.signer(key_id)
    except KeyUnavailable as exc:
        detail = f"audit key {key_id!r} unavailable: {exc}; run `ca-service init`"
        raise Unavailable(detail, code="audit-key-unavailable") from None


def signed_payload(seq: int, event_count: int, head_hash: str, signed_at: str) -> bytes:
    """The exact bytes the signature covers (what a third party recomputes to verify)."""
    body = {"seq": seq, "event_count": event_count, "head_hash": head_hash, "signed_at": signed_at}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def as_dict(row: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as served and as `--checkpoint FILE` takes it."""
    return {
        "seq": row.seq,
        "event_count": row.event_count,
        "head_hash": row.head_hash,
        "signed_at": rfc3339(row.signed_at),
        "key_id": row.key_id,
        "signature": row.signature,
    }


def create(ctx: ServiceContext, *, only_if_advanced: bool = False) -> dict[str, Any] | None:
    """Seal pending events, then sign the chain head as the next checkpoint. With
    only_if_advanced (the scheduler), nothing when the head has not moved since the last one."""
    audit.seal_pending(ctx, wait=True)
    signer = _signer(ctx)
    with transaction(ctx.sessions) as session:
        store.lock_chain(session)
        head = store.chain_head(session)
        last = store.latest(session)
        head_hash = head.head_hash or audit.GENESIS
        if only_if_advanced and last is not None and (last.event_count, last.head_hash) == (head.event_count, head_hash):
            return None
        if only_if_advanced and last is None and head.event_count == 0:
            return None
        seq = (last.seq if last else 0) + 1
        signed_at = ctx.clock.now().replace(microsecond=0)
        payload = signed_payload(seq, head.event_count, head_hash, rfc3339(signed_at))
        signature = base64.b64encode(signer.sign_bytes(payload)).decode()
        row = store.insert(
            session,
            seq=seq,
            event_count=head.event_count,
            head_hash=head_hash,
            signed_at=signed_at,
            key_id=signer.key_ref,
            signature=signature,
        )
        served = as_dict(row)
    log.info("audit checkpoint %s", json.dumps(served, sort_keys=True), extra={"audit_checkpoint": served})
    audit_sink.append(ctx, served)  # where a database writer cannot reach: `audit verify` checks it
    return served


def newest_first(ctx: ServiceContext, *, limit: int, before_seq: int | None = None) -> list[dict[str, Any]]:
    with reading(ctx.sessions) as session:
        return [as_dict(r) for r in store.newest_first(session, limit=limit, before_seq=before_seq)]


def public_keys(ctx: ServiceContext) -> list[dict[str, str]]:
    """The audit key's public key (PEM SubjectPublicKeyInfo), for third parties to verify with."""
    cached = _PUBLIC_KEYS.get(AUDIT_KEY_REF)
    if isinstance(cached, list):
        return cached
    pem = _signer(ctx).public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    keys = [{"key_id": AUDIT_KEY_REF, "algorithm": "ecdsa-p256-sha256", "public_key_pem": pem.decode()}]
    _PUBLIC_KEYS[AUDIT_KEY_REF] = keys
    return keys


def _signature_ok(ctx: ServiceContext, cp: dict[str, Any]) -> bool:
    try:
        payload = signed_payload(int(cp["seq"]), int(cp["event_count"]), str(cp["head_hash"]), str(cp["signed_at"]))
        _signer(ctx, str(cp["key_id"])).verify_bytes(base64.b64decode(str(cp["signature"]), validate=True), payload)
    except (InvalidSignature, ValueError, KeyError, TypeError, Unavailable):
        return False
    return True


def parse_checkpoint(text: str) -> dict[str, Any]:
    """A checkpoint saved elsewhere: the JSON of one item as GET /v1/audit-checkpoints serves it."""
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInput("the checkpoint file is not JSON") from None
    if isinstance(value, dict) and isinstance(value.get("items"), list) and value["items"]:
        value = value["items"][0]  # a whole page saved: its newest checkpoint
    fields = ("seq", "event_count", "head_hash", "signed_at", "key_id", "signature")
    if not isinstance(value, dict) or any(f not in value for f in fields):
        raise InvalidInput(f"a checkpoint is a JSON object with {', '.join(fields)}")
    return value


@dataclass(frozen=True)
class CheckpointVerdict:
    ok: bool
    chain_events: int
    checkpoints: int
    newest_seq: int | None
    problem: str | None = None
    first_bad_index: int | None = None  # chain index of the first bad (or missing) event
    first_bad_event_id: int | None = None


def _against(cp: dict[str, Any], chain_events: int, chain_hash: str | None, previous_count: int) -> tuple[str, int] | None:
    """Why the chain does not match checkpoint cp (message, first bad chain index), or None."""
    count, seq = int(cp["event_count"]), cp["seq"]
    if chain_events < count:
        missing = count - chain_events
        return (
            f"the chain holds {chain_events} events but checkpoint {seq} signed {count}: "
            f"{missing} event(s) deleted from chain index {chain_events + 1}",
            chain_events + 1,
        )
    expected = cp["head_hash"]
    actual = chain_hash if count else audit.GENESIS
    if actual != expected:
        first = previous_count + 1
        where = f"chain index {first}" if first == count else f"chain index {first}..{count}"
        problem = f"the chain was rewritten: its hash at event {count} differs from checkpoint {seq} (first bad event: {where})"
        return problem, first
    return None


def verify(ctx: ServiceContext, external: dict[str, Any] | None = None, *, use_file: bool = True) -> CheckpointVerdict:
    """The chain (audit.verify_chain: edits, deletions, broken links, events without a valid
    authenticator), then every stored checkpoint (signature, no seq missing, chain not shorter,
    same hash at its head), then the newest checkpoint of the file a database writer cannot reach
    (services/audit/checkpoint_file, unless not `use_file`), then `external`."""
    chain = audit.verify_chain(ctx)
    if not chain.ok:
        return CheckpointVerdict(False, chain.checked, 0, None, chain.problem, None, chain.broken_event_id)
    kept = audit_sink.newest(ctx) if use_file else None
    with reading(ctx.sessions) as session:
        stored = store.all_against_chain(session)
        chain_events = store.sealed_count(session)
        verdict = _verify_stored(ctx, stored, chain_events)
        for copy, label in ((kept, "the checkpoint file's newest, checkpoint"), (external, "the given checkpoint")):
            if verdict.ok and copy is not None:
                verdict = _verify_external(ctx, session, copy, stored, chain_events, label)
        if verdict.first_bad_index is not None:
            first_id = store.event_id_at(session, verdict.first_bad_index)
            verdict = CheckpointVerdict(**{**verdict.__dict__, "first_bad_event_id": first_id})
    return verdict


def _verify_stored(ctx: ServiceContext, stored: list[store.CheckpointAgainstChain], chain_events: int) -> CheckpointVerdict:
    previous_count, newest = 0, None
    for position, item in enumerate(stored, start=1):
        cp = as_dict(item.row)
        newest = cp["seq"]
        if cp["seq"] != position:
            return CheckpointVerdict(False, chain_events, len(stored), newest, f"checkpoint {position} is missing (deleted)")
        if not _signature_ok(ctx, cp):
            return CheckpointVerdict(False, chain_events, len(stored), newest, f"checkpoint {cp['seq']} has a bad signature")
        if int(cp["event_count"]) < previous_count:
            return CheckpointVerdict(False, chain_events, len(stored), newest, f"checkpoint {cp['seq']} goes backwards")
        mismatch = _against(cp, chain_events, item.chain_hash, previous_count)
        if mismatch:
            return CheckpointVerdict(False, chain_events, len(stored), newest, mismatch[0], mismatch[1])
        previous_count = int(cp["event_count"])
    return CheckpointVerdict(True, chain_events, len(stored), newest)


def _verify_external(
    ctx: ServiceContext,
    session: Tx,
    cp: dict[str, Any],
    stored: list[store.CheckpointAgainstChain],
    chain_events: int,
    label: str = "the given checkpoint",
) -> CheckpointVerdict:
    n = len(stored)
    newest = stored[-1].row.seq if stored else None
    if not _signature_ok(ctx, cp):
        return CheckpointVerdict(False, chain_events, n, newest, f"{label} {cp.get('seq')} has a bad signature")
    same = next((s for s in stored if s.row.seq == cp["seq"]), None)
    if same is None or as_dict(same.row) != {k: cp[k] for k in as_dict(same.row)}:
        state = "missing from" if same is None else "different in"
        problem = f"{label} {cp['seq']} is {state} the database (checkpoints deleted or replaced)"
        mismatch = _against(cp, chain_events, store.hash_at(session, int(cp["event_count"])), 0)
        if mismatch:
            problem += "; " + mismatch[0]
        return CheckpointVerdict(False, chain_events, n, newest, problem, mismatch[1] if mismatch else None)
    return CheckpointVerdict(True, chain_events, n, newest)
