"""`ca-service ocsp`: the delegated OCSP responder certificate."""

from __future__ import annotations

import click

from ca_service.cli.common import cli_actor, context, echo_json, echo_table, handle_errors
from ca_service.services.authority import responder_certificates as ocsp_signer


@click.group("ocsp")
def ocsp_group() -> None:
    """The OCSP responder's signing certificate (issued by the issuing CA, short-lived)."""


@ocsp_group.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def rotate(as_json: bool) -> None:
    """Issue a new responder certificate for each issuing CA whose current one has a third or less
    of its lifetime left (what the scheduler runs every 6 hours); otherwise change nothing."""
    results = ocsp_signer.ensure_all_responders(context(), cli_actor())
    if as_json:
        echo_json(results)
        return
    echo_table(
        ["issuer", "responder", "serial", "not_after", "action"],
        [[r.issuer_name, r.responder_name, r.serial, r.not_after, "issued" if r.created else "kept"] for r in results],
    )
