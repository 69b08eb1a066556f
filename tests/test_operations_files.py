"""The deployment files: Dockerfile linted with hadolint, compose and alert rules structurally sound
(the rules unit-tested with promtool when it is installed), every setting documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and 'ENTRYPOINT ["ca-service"]' in text and "VOLUME" in text
    assert text.count("FROM python:3.11-slim") == 2  # multi-stage
    assert not re.search(r"^# syntax=", text, re.M)  # BuildKit would fetch its frontend from Docker Hub
    # one HEALTHCHECK for every role: the command checks the role the container runs
    assert re.search(r'^HEALTHCHECK .*\n\s*CMD \["ca-service", "healthcheck"\]', text, re.M)
    assert "ENV " in text and "CA_HEALTH_FILE=/tmp/" in text  # in the container, never the shared volume
    # nothing in it depends on where the base image's Python lives (official: /usr/local, site-
    # packages; the CI stand-in: Debian's /usr/bin and dist-packages)
    assert "site-packages" not in text and "dist-packages" not in text and "/usr/local/bin" not in text


def test_secrets_are_neither_committed_nor_sent_as_build_context():
    proc = subprocess.run(["git", "check-ignore", "-q", "secrets/ca_key_passphrase"], cwd=ROOT, check=False)
    assert proc.returncode == 0, "secrets/ is not in .gitignore"
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert "secrets" in ignored


def test_package_data_patterns_match_files():
    """Every package-data pattern names at least one file (alembic.ini was listed and absent)."""
    import tomllib

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in package_data.items():
        base = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert list(base.glob(pattern)), f"{package}: {pattern} matches nothing"


def test_compose_stack():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"api", "worker", "scheduler", "postgres", "redis", "init"}
    for name in ("api", "worker", "scheduler", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker", "scheduler"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["CA_KEY_PASSPHRASE_FILE"].startswith("/run/secrets/")
    assert services["init"]["command"] == ["init"] and services["init"]["restart"] == "no"
    # the root key's passphrase is a secret of the ceremony container only (DESIGN §3: offline root)
    assert services["init"]["environment"]["CA_ROOT_KEY_PASSPHRASE_FILE"].startswith("/run/secrets/")
    for name in ("api", "worker", "scheduler"):
        assert not any(k.startswith("CA_ROOT_KEY") for k in services[name]["environment"]), name
        assert "ca_root_key_passphrase" not in services[name]["secrets"], name
    assert {"ca-data", "pg-data"} <= set(compose["volumes"])
    for name in ("init", "api", "worker", "scheduler"):  # metrics files: per container, in memory
        env = services[name]["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"] in services[name]["tmpfs"], name
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and env["REDIS_URL"].startswith("redis://")
    assert services["worker"]["environment"]["CA_WORKER_METRICS_PORT"] in services["worker"]["expose"]
    for name in ("init", "worker", "scheduler"):  # each role's own check, not the API's port
        assert services[name]["healthcheck"]["test"] == ["CMD", "ca-service", "healthcheck", name], name
    uid = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert uid and f"chown {uid.group(1)}:" in (ROOT / "compose.yaml").read_text()  # the secret's owner


def test_alert_rules():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert names == {
        "CaCrlStale", "CaNoticeEmailsFailing", "CaIssuingCertificateExpiring", "CaBackgroundStopped", "CaRedisDown",
        "CaRootCrlExpiring", "CaRevocationBrakeEngaged", "CaIssuanceBrakeEngaged", "CaWebhooksBehind",
        "CaWebhookDeliveriesFailed",
        "CaRevocationNotOnCrl", "CaAuditEventRefused",
    }  # fmt: skip
    docs = (ROOT / "docs/operations.md").read_text()
    for rule in rules:
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert f"### {anchor.replace('-', ' ')}".lower() in docs.lower(), anchor


def test_alert_rules_with_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    deploy = ROOT / "deploy/prometheus"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        proc = subprocess.run([promtool, *args], cwd=deploy, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_setting_is_documented():
    names = set(re.findall(r'"((?:CA|DATABASE|REDIS|PROMETHEUS)_[A-Z_]+)"', (ROOT / "config/settings.py").read_text()))
    names |= set(re.findall(r'"(CA_[A-Z_]+)"', (ROOT / "ca_service/cli/background.py").read_text()))
    assert len(names) > 30
    reference = (ROOT / "docs/configuration.md").read_text()  # the one complete table (make docs)
    assert sorted(n for n in names if f"`{n}`" not in reference) == []
