"""Shared fixtures: a real database and Redis per worker, an initialised CA, API tokens per role,
an in-process Flask client, and (lazily) a real gunicorn serving the same database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from sqlalchemy import text

from ca_service.api.app import create_app
from ca_service.context import Actor, ServiceContext, build_context
from ca_service.services.access import clients
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.background.jobs import register_routes
from ca_service.services.crl import root as root_crl
from ca_service.store.migrate import upgrade_to_head
from ca_service.store.models import Base
from config.settings import load_settings
from tests.support.api import Api
from tests.support.environment import TestEnvironment, clock_offset_seconds, create_environment
from tests.support.live import LiveProcesses
from tests.support.pki import make_csr

KEPT_TABLES = {"certificate_authorities", "api_clients", "alembic_version", "crls"}  # crls: all but the root's
SYSTEM = Actor(client_name="tests", role="operator")


@pytest.fixture(scope="session")
def test_env(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[TestEnvironment]:
    env = create_environment(tmp_path_factory.mktemp("ca"), worker_id)
    saved = dict(os.environ)
    os.environ.update(env.env())
    yield env
    os.environ.clear()
    os.environ.update(saved)
    env.close()


@pytest.fixture(scope="session")
def ctx(test_env: TestEnvironment) -> ServiceContext:
    context = build_context(load_settings())
    register_routes()  # as every process that commits changes does at start-up
    upgrade_to_head(context.engine)
    authorities.ensure_hierarchy(context, SYSTEM)
    if root_crl.stored_root_crl(context) is None:  # what `ca-service init` signs at the ceremony
        root_crl.sign_root_crl(context, SYSTEM)
    audit_checkpoints.ensure_audit_key(context)  # as `init` does
    return context


@pytest.fixture(scope="session")
def tokens(ctx: ServiceContext) -> dict[str, str]:
    result = {}
    for role in clients.ROLES:
        _info, token = clients.create_client(ctx, SYSTEM, f"test-{role}", role)
        result[role] = token
    return result


class TimeMachine:
    """Moves the injectable clock of this process and of every process under test. The offset
    lives in the clock file alone (tests/support/console.fresh_otp moves it too)."""

    def __init__(self, env: TestEnvironment) -> None:
        self.env = env

    @property
    def offset(self) -> timedelta:
        return timedelta(seconds=clock_offset_seconds(self.env.clock_file))

    def now(self) -> datetime:
        """The moved time, read when called: take it after a response arrives, as a relying
        party would (the service truncates its times to whole seconds)."""
        return datetime.now(UTC) + self.offset

    def travel(self, **delta: float) -> None:
        self.env.clock_file.write_text(str((self.offset + timedelta(**delta)).total_seconds()))

    def reset(self) -> None:
        self.env.clock_file.write_text("0")


@pytest.fixture
def clock(test_env: TestEnvironment) -> Iterator[TimeMachine]:
    machine = TimeMachine(test_env)
    machine.reset()
    yield machine
    machine.reset()


def _clean(ctx: ServiceContext) -> None:
    ctx.settings.audit_checkpoint_path.unlink(missing_ok=True)  # the checkpoints' copy outside the database
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEPT_TABLES]
    with ctx.engine.begin() as conn:  # the root CRL is signed at a ceremony: it stays, like the CAs
        conn.execute(text("DELETE FROM crls WHERE issuer_id NOT IN (SELECT id FROM certificate_authorities WHERE kind = 'root')"))
    with ctx.engine.begin() as conn:
        if ctx.is_postgres:
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())
            conn.execute(text("DELETE FROM certificate_authorities WHERE kind NOT IN ('root', 'issuing')"))
    if ctx.is_postgres:
        with ctx.engine.begin() as conn:
            conn.execute(text("DELETE FROM certificate_authorities WHERE kind NOT IN ('root', 'issuing')"))


@pytest.fixture(autouse=True)
def clean_database(request: pytest.FixtureRequest) -> None:
    """Every test starts with no organisations, users, certificates or audit events (the CA and
    the API clients are kept). Tests that need no database skip this by not using `ctx`."""
    if "ctx" in request.fixturenames or "api" in request.fixturenames or "live" in request.fixturenames:
        context: ServiceContext = request.getfixturevalue("ctx")
        _clean(context)
        request.getfixturevalue("clock")


@pytest.fixture
def api(ctx: ServiceContext, tokens: dict[str, str]) -> Api:
    """The API in-process (Flask test client) on the same database and clock."""
    app = create_app(ctx)
    return Api(tokens, flask_client=app.test_client())


@pytest.fixture(scope="session")
def live_processes(test_env: TestEnvironment, ctx: ServiceContext, tokens: dict[str, str]) -> Iterator[LiveProcesses]:
    procs = LiveProcesses(test_env, tokens)
    yield procs
    procs.stop_all()


@pytest.fixture
def live(live_processes: LiveProcesses) -> Api:
    """The API served by a real gunicorn (several workers) on the same database and clock."""
    return live_processes.api()


@pytest.fixture
def issuer(ctx: ServiceContext) -> x509.Certificate:
    """The active issuing CA's certificate."""
    return authorities.active_issuer(ctx).context.certificate


@pytest.fixture
def leaf(api: Api) -> x509.Certificate:
    """alice's certificate (organisation acme), issued through the API."""
    api.org("acme")
    api.user("alice", "acme")
    r = api.issue("alice", make_csr()[1])
    assert r.status == 201, r
    return x509.load_pem_x509_certificate(r.json["certificate_pem"].encode())
