"""JSON logs of a real gunicorn over a full scenario: every line parses, carries the request id,
and no secret (token, passphrase, CSR, certificate or key PEM) ever appears; the worker that runs
the jobs a request caused logs that request's id."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization

from tests.support.environment import PASSPHRASE
from tests.support.pki import make_csr
from tests.support.workers import empty_queues, run_worker_burst


def test_logs_are_json_lines_without_secrets(live, live_processes, test_env):
    empty_queues(test_env.redis_url)
    log = live_processes.processes["api"]
    start = len(log.log())
    live.org("acme")
    live.user("boss", "acme", role="master")
    live.user("alice", "acme")
    key, csr = make_csr()
    issued = live.issue("alice", csr).json
    live.post(
        "/v1/login-checks", json={"login_id": "alice", "method": "certificate", "certificate_pem": issued["certificate_pem"]}
    )
    r = live.post(
        f"/v1/certificates/{issued['serial']}/revocation",
        json={"reason": "key_compromise", "acting_login_id": "boss"},
        headers={"X-Request-ID": "req-test-0001"},
    )
    assert r.status == 200 and r.headers["X-Request-ID"] == "req-test-0001"
    live.post(
        "/v1/users/alice/certificates",
        json={"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"},
    )
    worker_log = run_worker_burst(test_env)  # runs the CRL publication the revocation queued
    text = log.log()[start:]
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
    revocation = [r for r in records if r.get("request_id") == "req-test-0001"]
    assert revocation and revocation[-1]["api_client"] == "test-frontend" and revocation[-1]["serial"] == issued["serial"]
    assert revocation[-1]["acting_login_id"] == "boss"
    issuance = [r for r in records if r["message"].startswith("POST /v1/users/<login_id>/certificates 201")]
    assert [(r["serial"], r["acting_login_id"], r["api_client"]) for r in issuance] == [
        (issued["serial"], "alice", "test-frontend")
    ]
    assert len({r["request_id"] for r in records if r["logger"] == "ca_service.access"}) >= 6  # one per request
    worker_records = [json.loads(line) for line in worker_log.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in worker_records)
    job_lines = [r for r in worker_records if r.get("request_id") == "req-test-0001"]
    assert job_lines and all(r["job_id"] for r in job_lines)
    assert any("published CRL issuing" in r["message"] for r in job_lines), [r["message"] for r in worker_records]
    text += worker_log
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secrets = [
        *live.tokens.values(),
        PASSPHRASE,
        csr.splitlines()[1],
        key_pem.splitlines()[1],
        issued["certificate_pem"].splitlines()[1],
    ]
    for secret in secrets:
        assert secret not in text
