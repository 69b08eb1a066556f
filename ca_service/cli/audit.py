"""`ca-service audit`: verify the hash chain against its signed checkpoints; take a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from ca_service.cli.common import context, echo_json, fail, handle_errors, reading_context
from ca_service.services.audit import checkpoints as audit_checkpoints


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail and its signed checkpoints."""


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check against this checkpoint kept elsewhere (JSON as GET /v1/audit-checkpoints serves one).",
)
@handle_errors
def audit_verify(checkpoint_file: Path | None) -> None:
    """Seal pending events, recompute the whole chain, then check it against every signed
    checkpoint (and --checkpoint FILE); exit 1 naming the first bad event or the shortfall."""
    ctx = reading_context()  # a check: sealing changes no data, and without a database there is nothing to verify
    external = audit_checkpoints.parse_checkpoint(checkpoint_file.read_text()) if checkpoint_file else None
    verdict = audit_checkpoints.verify(ctx, external)
    if not verdict.ok:
        where = ""
        if verdict.first_bad_event_id is not None:
            index = f" (chain index {verdict.first_bad_index})" if verdict.first_bad_index is not None else ""
            where = f" at event {verdict.first_bad_event_id}{index}"
        elif verdict.first_bad_index is not None:
            where = f" at chain index {verdict.first_bad_index} (event gone)"
        fail(f"audit chain broken{where}: {verdict.problem}", 1)
    if verdict.newest_seq is None:
        click.echo(f"audit chain OK: {verdict.chain_events} events verified; no checkpoint yet (the tail is not protected)")
        return
    extra = " and the given checkpoint" if external else ""
    click.echo(
        f"audit chain OK: {verdict.chain_events} events verified against {verdict.checkpoints} signed checkpoints"
        f" (newest: {verdict.newest_seq}){extra}"
    )


@audit_group.command("checkpoint")
@handle_errors
def audit_checkpoint() -> None:
    """Sign the chain head now; prints the checkpoint as JSON (keep a copy elsewhere)."""
    echo_json(audit_checkpoints.create(context()))
