"""/metrics of a real gunicorn with several workers: counters summed across the workers; the
worker's and scheduler's metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import requests

from ca_service.services.notices import scan as notices
from tests.support.background import SmtpServer, wait_for
from tests.support.live import free_port
from tests.support.pki import make_csr
from tests.support.workers import empty_queues


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_counters_after_a_scenario_sum_across_workers(live, live_processes):
    before = live.get("/metrics", role=None).content.decode()
    live.org("acme")
    live.user("boss", "acme", role="master")
    serials = []
    for i in range(3):
        live.user(f"u{i}", "acme")
        serials.append(live.issue(f"u{i}", make_csr()[1]).json["serial"])
    r = live.post(f"/v1/certificates/{serials[0]}/revocation", json={"reason": "key_compromise", "acting_login_id": "boss"})
    assert r.status == 200
    for _ in range(4):  # spread over the workers
        live.post("/v1/login-checks", json={"login_id": "u1", "method": "id_password"})
    after = live.get("/metrics", role=None)
    assert after.status == 200 and after.headers["Content-Type"].startswith("text/plain")
    text = after.content.decode()

    def delta(name: str, **labels: str) -> float:
        return _value(text, name, **labels) - _value(before, name, **labels)

    assert delta("ca_certificates_issued_total", kind="new") == 3
    assert delta("ca_certificates_revoked_total", reason="key_compromise") == 1
    assert delta("ca_login_checks_total", result="certificate-required") == 4
    route = "/v1/users/<login_id>/certificates"
    assert delta("ca_http_requests_total", method="POST", route=route, status="201") == 3
    assert delta("ca_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert re.search(r'^ca_certificate_expiry_seconds\{ca="issuing"\} \d', text, re.M)
    assert not re.search(r'pid="\d+"', text)  # multiprocess mode aggregates: no per-process series
    api_pid = live_processes.processes["api"].proc.pid  # `serve` execs gunicorn: same pid
    writers = {p.name for p in (live_processes.env.data_dir / "metrics" / f"serve-{api_pid}").glob("counter_*.db")}
    assert len(writers) >= 2, writers  # the counts above were summed over several gunicorn workers


def test_worker_and_scheduler_metrics(live, live_processes, test_env, ctx):
    """The API's /metrics shows the running workers and schedulers (from Redis); a worker serves
    its own counters on CA_WORKER_METRICS_PORT (summed over RQ's forked work horses)."""
    empty_queues(test_env.redis_url)
    live.org("acme")
    live.user("hana", "acme", email="hana@example.com")
    serial = live.issue("hana", make_csr()[1]).json["serial"]
    scrape = lambda: live.get("/metrics", role=None).content.decode()  # noqa: E731
    before = scrape()
    workers0, schedulers0 = _value(before, "ca_rq_workers"), _value(before, "ca_schedulers")
    assert _value(before, "ca_redis_up") == 1

    smtp = SmtpServer()
    smtp.start()
    port = free_port()
    worker = live_processes.start("worker-metrics", ["worker"], CA_WORKER_METRICS_PORT=str(port), CA_SMTP_PORT=str(smtp.port))
    scheduler = live_processes.start("scheduler-metrics", ["scheduler"])
    try:
        wait_for(
            lambda: _value(scrape(), "ca_rq_workers") == workers0 + 1 and _value(scrape(), "ca_schedulers") == schedulers0 + 1
        )
        # the scheduler's first tick queues a CRL republication; a notice scan 340 days ahead (as
        # `ca-service notices scan --as-of` runs it: a queued job may not carry as_of, issue 26)
        # finds hana's certificate inside the 40-day window and the worker mails her
        assert notices.scan(ctx, datetime.now(UTC) + timedelta(days=340)).created == 1  # counted in this process
        wait_for(lambda: smtp.messages)
        assert serial in smtp.messages[0].get_body(("plain",)).get_content()

        def worker_metrics() -> str | None:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            done = _value(text, "ca_notice_emails_total", result="sent") == 1
            return text if done and _value(text, "ca_crl_publications_total", ca="issuing") >= 1 else None

        wait_for(worker_metrics)
        wait_for(lambda: re.search(r'^ca_crl_number\{ca="issuing"\} [1-9]', scrape(), re.M))  # cached for a few seconds
    finally:
        codes = {worker.stop(), scheduler.stop()}
        smtp.stop()
    assert codes == {0}
    after = scrape()  # both deregistered on SIGTERM
    assert (_value(after, "ca_rq_workers"), _value(after, "ca_schedulers")) == (workers0, schedulers0)
