"""The `ca-service` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

import config
from ca_service.cli.audit import audit_group
from ca_service.cli.background import crl_group, notices_group, scheduler, worker
from ca_service.cli.ceremony import ca_group
from ca_service.cli.clients import clients_group
from ca_service.cli.common import cli_actor, context, handle_errors, prepare_metrics_dir
from ca_service.cli.dev import dev
from ca_service.cli.health import ROLES
from ca_service.cli.health import record as record_role
from ca_service.cli.health import run as run_healthcheck
from ca_service.cli.helpdesk import audit_list, notices_list, search, users_search
from ca_service.cli.ocsp import ocsp_group
from ca_service.cli.operator import COMMANDS as OPERATOR_COMMANDS
from ca_service.cli.operator import users_group
from ca_service.cli.operators import operators_group
from ca_service.cli.webhooks import webhooks_group
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.crl import root as root_crl
from ca_service.store.migrate import upgrade_to_head

GUNICORN_CONF = Path(config.__file__).parent / "gunicorn.conf.py"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """ca-service: the bank's internal CA for internet-banking client certificates.

    Settings come from the environment (see README): DATABASE_URL, REDIS_URL, CA_DATA_DIR,
    CA_KEY_PASSPHRASE[_FILE] (online keys), CA_ROOT_KEY_PASSPHRASE[_FILE] (root key, ceremony
    commands only), CA_KEY_BACKEND (file|pkcs11), CA_PUBLIC_BASE_URL, ...
    """


@cli.command()
@handle_errors
def init() -> None:
    """Migrate the database and create the root and issuing CA if absent (idempotent)."""
    record_role("init", step="loading settings")
    ctx = context()
    click.echo("migrating database schema ...")
    record_role("init", step="migrating the database")
    upgrade_to_head(ctx.engine)
    record_role("init", step="creating the CA hierarchy if absent")
    result = authorities.ensure_hierarchy(ctx, cli_actor())
    record_role("init", step="creating the OCSP responders if absent")
    ocsp_signer.ensure_all_responders(ctx, cli_actor())  # so the first OCSP request never has to write
    record_role("init", step="creating the audit key if absent")
    created = [*result.created, *([audit_checkpoints.AUDIT_KEY_REF] if audit_checkpoints.ensure_audit_key(ctx) else [])]
    if root_crl.stored_root_crl(ctx) is None:  # the first root CRL, while the root key is at hand
        signed = root_crl.sign_root_crl(ctx, cli_actor())
        click.echo(f"signed root CRL #{signed.crl_number} (nextUpdate {signed.next_update.date()})")
    record_role("init", step="done")
    if created:
        click.echo(f"created: {', '.join(created)}")
    click.echo(f"root CA: {result.root_name}; issuing CA: {result.issuing_name}; data dir: {ctx.settings.data_dir}")


@cli.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT for gunicorn.")
@handle_errors
def serve(bind: str) -> None:
    """Run the HTTP API under gunicorn (config/gunicorn.conf.py, the app factory)."""
    ctx = context()
    authorities.check_ca_keys(ctx)  # refuse to start with a missing, exposed or undecryptable key
    ctx.engine.dispose()
    prepare_metrics_dir(ctx.settings.data_dir)
    # gunicorn keeps this pid (execv); the healthcheck asks the arbiter's liveness listener if there is one
    record_role("serve", bind=ctx.settings.health_bind or bind)
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", bind, "ca_service.api.app:create_app()"]
    os.execv(sys.executable, argv)  # noqa: S606 - replace this process with gunicorn


@cli.command()
@click.argument("role", required=False, type=click.Choice(ROLES))
def healthcheck(role: str | None) -> None:
    """The container HEALTHCHECK: check the role this container runs (recorded in $CA_HEALTH_FILE
    by init, serve, worker or scheduler); with ROLE, also insist that it is that role. Exit 0
    healthy, 1 not (one line saying why)."""
    sys.exit(run_healthcheck(role))


audit_group.add_command(audit_list)
cli.add_command(audit_group)
cli.add_command(clients_group)
for command in (worker, scheduler, crl_group, notices_group):
    cli.add_command(command)
cli.add_command(dev)
cli.add_command(ocsp_group)
cli.add_command(ca_group)
for command in OPERATOR_COMMANDS:
    cli.add_command(command)
cli.add_command(search)
cli.add_command(operators_group)
cli.add_command(webhooks_group)
notices_group.add_command(notices_list)
users_group.add_command(users_search)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
