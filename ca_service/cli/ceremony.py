"""`ca-service ca`: the key ceremony commands, the only ones that use the offline root key
(docs/operations.md "Root key ceremony")."""

from __future__ import annotations

import click

from ca_service.cli.common import cli_actor, context, echo_json, fail, handle_errors
from ca_service.pki.keys import EncryptedFileKeyBackend
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.crl import publication as crl_publication
from ca_service.services.crl import root as root_crl


@click.group("ca")
def ca_group() -> None:
    """Key ceremonies: the root CRL, issuing-CA rollover, re-encrypting key files."""


@ca_group.command("root-crl")
@click.option("--days", default=root_crl.DEFAULT_DAYS, show_default=True, type=click.IntRange(1, 1098), help="nextUpdate.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def root_crl_command(days: int, as_json: bool) -> None:
    """Sign the root CA's next CRL with the root key (a ceremony), store and publish it. The
    service serves it as stored until the next ceremony; readiness warns 30 days before it lapses."""
    result = root_crl.sign_root_crl(context(), cli_actor(), days=days)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"root CRL {result.ca_name} #{result.crl_number}: {result.entries} entries, nextUpdate {result.next_update.isoformat()}"
    )


@ca_group.command("rollover")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def rollover(as_json: bool) -> None:
    """Create the next issuing CA under the root and make it the active one (a ceremony: needs
    the root key). The previous issuing CA keeps its CRL and OCSP responder until it expires.
    Restart the API and workers afterwards so that they sign with the new CA."""
    ctx = context()
    actor = cli_actor()
    result = authorities.ensure_hierarchy(ctx, actor, rollover=True)
    responders = ocsp_signer.ensure_all_responders(ctx, actor)
    crls = crl_publication.publish(ctx, force=True, actor=actor)
    if as_json:
        echo_json({"root": result.root_name, "issuing": result.issuing_name, "responders": responders, "crls": crls})
        return
    click.echo(f"active issuing CA: {result.issuing_name} (under {result.root_name})")
    click.echo("published CRLs: " + ", ".join(f"{c.ca_name} #{c.crl_number}" for c in crls))
    click.echo("now restart the API, worker and scheduler so that they sign with the new issuing CA")


@ca_group.command("rekey-files")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def rekey_files(as_json: bool) -> None:
    """Re-encrypt key files written by older versions (PBKDF2 2,048 rounds; the root under the
    online passphrase) with 600,000 PBKDF2-SHA256 rounds, root keys under
    CA_ROOT_KEY_PASSPHRASE. The keys themselves do not change. Idempotent."""
    ctx = context()
    keys = ctx.keys
    if not isinstance(keys, EncryptedFileKeyBackend):
        fail("CA_KEY_BACKEND is not `file`: there are no key files to re-encrypt")
    refs = keys.key_refs()
    if not ctx.settings.has_root_passphrase():
        fail("set CA_ROOT_KEY_PASSPHRASE[_FILE] (the root key's own passphrase) to re-encrypt key files")
    changed = [ref for ref in refs if keys.rekey(ref)]
    if as_json:
        echo_json({"rewritten": changed, "unchanged": [r for r in refs if r not in changed]})
        return
    click.echo(f"re-encrypted {len(changed)} of {len(refs)} key files" + (f": {', '.join(changed)}" if changed else ""))
