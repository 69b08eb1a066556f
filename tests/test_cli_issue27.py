"""Issue 27 §3-§4: the CLI a help desk runs beside the console. Read-only commands never create a
database; `revoke` needs --ticket only for a master's certificate (R9, as the API and console);
`certs show` takes the serial prefixes `search` takes; times in CA_TIMEZONE with the offset and
--since in either zone; `days_remaining` only for an active certificate (API and `certs list`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, timedelta

import click
import pytest
from sqlalchemy import select

from ca_service.cli.main import cli
from ca_service.store.models import Certificate
from tests.support.workers import insert_certificates
from tests.test_operations_cli import as_json, ca, setup_org

NOT_INITIALISED = "not initialised: run `ca-service init`, or load var/dev.env"


# Every command that only reads (audit verify also seals the pending events into the chain: it
# changes no data and must never create a database either). Each runs outside a set-up folder.
READ_ONLY = (
    ("search", "acme"),
    ("users", "search", "acme"),
    ("users", "show", "acme-boss"),
    ("orgs", "show", "acme"),
    ("certs", "list"),
    ("certs", "show", "ab"),
    ("audit", "list"),
    ("audit", "verify"),
    ("notices", "list"),
    ("clients", "list"),
    ("operators", "list"),
    ("jobs", "failed"),
    ("crl", "show"),
    ("webhooks", "list"),
)
# The commands that change something (init and dev create the database on purpose), and healthcheck,
# which reads only $CA_HEALTH_FILE. A new command must be put in one of the lists.
CHANGING = {
    "init", "serve", "dev", "worker", "scheduler", "revoke", "audit checkpoint", "ca rekey-files", "ca rollover",
    "ca root-crl", "clients create", "clients disable", "clients rotate", "crl publish", "jobs failed --requeue",
    "notices scan", "ocsp rotate", "operators create", "operators disable", "operators reset", "orgs switch-method",
    "webhooks retry",
}  # fmt: skip
NO_DATABASE = {"healthcheck"}


def test_every_command_is_classified_as_read_only_or_changing():
    def paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from paths(command, (*prefix, name))
            else:
                yield " ".join((*prefix, name))

    read_only = {_command_path(args) for args in READ_ONLY}
    changing = {c.removesuffix(" --requeue") for c in CHANGING}  # jobs failed lists; with --requeue it changes
    assert read_only & changing == {"jobs failed"}
    assert set(paths(cli)) == read_only | changing | NO_DATABASE


def _command_path(args: tuple[str, ...]) -> str:
    """The command ARGS run, without its arguments: ("users", "show", "x") -> "users show"."""
    command: click.Command = cli
    words = []
    for word in args:
        if not isinstance(command, click.Group):
            break
        command = command.commands[word]
        words.append(word)
    return " ".join(words)


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_outside_a_set_up_folder_creates_nothing(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CA_DATA_DIR")}
    out = _run_in(tmp_path, command, env)
    assert out.returncode == 1 and NOT_INITIALISED in out.stderr, (out.stdout, out.stderr)
    assert "no such table" not in out.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == []  # no ./var, no ./var/ca.sqlite3


def test_an_empty_database_file_is_reported_as_not_initialised(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "ca.sqlite3").write_bytes(b"")  # what the old CLI left behind
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CA_DATA_DIR")}
    out = _run_in(tmp_path, ("users", "search", "acme"), env)
    assert out.returncode == 1 and NOT_INITIALISED in out.stderr and "has no tables" in out.stderr, out.stderr


def test_a_read_only_command_with_a_database_elsewhere_needs_no_data_folder(api, test_env, tmp_path):
    serial = setup_org(api, "acme", ())["acme-boss"]
    ca("crl", "publish")  # so that `crl show` has the issuing CA's CRL to show
    missing = tmp_path / "no-such-data-dir"  # a help-desk PC: DATABASE_URL set, no CA_DATA_DIR of its own
    env = test_env.env(CA_DATA_DIR=str(missing))
    out = _run_in(tmp_path, ("users", "search", "acme", "--json"), env)
    assert out.returncode == 0 and '"acme-boss"' in out.stdout, out.stderr
    # audit verify checks the checkpoints' signatures with the audit key kept in the data folder
    for command in (c for c in READ_ONLY if c != ("audit", "verify")):
        out = _run_in(tmp_path, ("certs", "show", serial) if command[:2] == ("certs", "show") else command, env)
        assert out.returncode == 0, (command, out.stdout, out.stderr)
    assert not missing.exists()  # nothing created


def _run_in(folder, command, env):
    """The real entry point, in FOLDER as the working directory."""
    return subprocess.run([sys.executable, "-m", "ca_service.cli.main", *command], cwd=folder, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_revoke_needs_the_ticket_only_for_a_masters_certificate(api, ctx):
    serials = setup_org(api, "acme", ("taro",))
    refused = ca("revoke", serials["acme-boss"], "--reason", "key_compromise", code=1)
    assert "[ticket-required]" in refused.output
    assert as_json("certs", "show", serials["acme-boss"])["status"] == "active"  # nothing written
    done = ca("revoke", serials["taro"], "--reason", "key_compromise").stdout  # a general user's: no ticket
    assert f"revoked {serials['taro']} of taro" in done and "ticket" not in done
    assert "+09:00" in done  # the revocation time in Japan time, with its offset
    assert as_json("certs", "show", serials["taro"])["status"] == "revoked"
    assert "ticket" in ca("revoke", serials["acme-boss"], "--reason", "key_compromise", "--ticket", "  ", code=2).output


def test_certs_show_takes_a_serial_prefix_like_search(api, ctx):
    serials = setup_org(api, "acme", ("taro",))
    taro = serials["taro"]
    unique = next(taro[:n] for n in range(4, 41) if not serials["acme-boss"].startswith(taro[:n]))
    colons = ":".join(unique.upper()[i : i + 2] for i in range(0, len(unique) - len(unique) % 2, 2))
    assert as_json("certs", "show", unique)["serial"] == taro
    assert as_json("certs", "show", colons)["serial"] == taro  # colons and capitals, as `search` takes
    assert "[certificate-not-found]" in ca("certs", "show", "f" * 39, code=1).output
    with ctx.engine.connect() as conn:  # nine more: their serials start with 8-f, so two share a first digit
        der = conn.execute(select(Certificate.der).where(Certificate.serial == taro)).scalar_one()
    more = insert_certificates(ctx, "acme", [{"login_id": f"u{i}", "not_after": ctx.clock.now() + timedelta(days=9)}
                                             for i in range(9)], der=der)  # fmt: skip
    digit, count = Counter(s[0] for s in more).most_common(1)[0]
    assert count >= 2
    several = ca("certs", "show", digit, code=1).output
    assert f"several certificates start with {digit}" in several and "give more digits" in several


def test_users_search_help_says_it_returns_users(ctx):
    text = " ".join(ca("users", "search", "--help").output.split())
    assert "Users only" in text and "each kind" not in text
    assert "of each kind (users, organisations, certificates)" in " ".join(ca("search", "--help").output.split())


def test_times_are_shown_in_ca_timezone_and_since_takes_either_zone(api, ctx):
    serial = setup_org(api, "acme", ())["acme-boss"]
    shown = ca("certs", "show", serial).stdout
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00", shown) and not re.search(r"\d\dZ\b", shown), shown
    table = ca("audit", "list", "--target", serial).stdout
    assert "+09:00" in table
    issued = as_json("audit", "list", "--target", serial)[0]["occurred_at"]  # --json stays RFC 3339 in UTC
    assert issued.endswith("Z")
    now = ctx.clock.now().astimezone(UTC)
    tokyo = now.astimezone(ctx.settings.tz)
    for since, found in (
        ((now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), 1),  # UTC, with Z
        ((tokyo - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"), 1),  # no zone: Japan time
        ((tokyo + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"), 0),
        ((tokyo - timedelta(minutes=5)).isoformat(), 1),  # an explicit offset
    ):
        assert len(as_json("audit", "list", "--target", serial, "--since", since)) == found, since
    # Japan time read as UTC would be 9 hours later: the event (minutes old) would not be found
    assert "not a date" in ca("audit", "list", "--since", "yesterday", code=2).output


def test_days_remaining_is_null_unless_the_certificate_is_active(api, ctx):
    serials = setup_org(api, "acme", ("taro",))
    revoked = api.post(f"/v1/certificates/{serials['taro']}/revocation", role="operator", json={"reason": "unspecified"})
    assert revoked.status == 200 and revoked.json["days_remaining"] is None, revoked
    assert api.get(f"/v1/certificates/{serials['taro']}", role="auditor").json["days_remaining"] is None
    assert api.get(f"/v1/certificates/{serials['acme-boss']}", role="auditor").json["days_remaining"] in (365, 366)
    listed = {c["serial"]: c["days_remaining"] for c in as_json("certs", "list")}
    assert listed[serials["taro"]] is None and listed[serials["acme-boss"]] in (365, 366)
    row = next(line for line in ca("certs", "list").stdout.splitlines() if line.startswith(serials["taro"]))
    assert " revoked " in row and not re.search(r"\b36[56]\b", row), row
    schema = api.get("/openapi.json", role=None).json["components"]["schemas"]["Certificate"]["properties"]["days_remaining"]
    assert {"type": "null"} in schema["anyOf"] and "null" in schema["description"]
