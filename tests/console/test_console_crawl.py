"""Every console page a link reaches answers without a server error, in both languages, with data
in every state: certificates active, revoked, expired and superseded; notices sent and failed;
approvals pending and settled; a signed audit checkpoint; a failed background job (issue 27 §1:
/console/audit was a 500 whenever a checkpoint existed and no test opened it after one)."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select

from ca_service.api.app import create_app
from ca_service.services.access import operators
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.helpdesk import approvals
from ca_service.store.models import Certificate, Notice
from tests.console.test_console_app import Console
from tests.support.console import make_operator
from tests.support.pki import make_csr
from tests.support.workers import insert_certificates, run_worker_burst
from tests.test_operations_cli import redis_queues as redis_queues  # a fixture, used by name
from tests.test_operations_cli import setup_org

HOPS = 2


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def links_of(base: str, html: str) -> set[str]:
    parser = _Links()
    parser.feed(html)
    found = set()
    for href in parser.hrefs:
        url = urlsplit(urljoin(f"http://localhost{base}", href))
        if url.path.startswith("/console/") and "lang=" not in url.query:  # the language stays the crawl's
            found.add(url.path + (f"?{url.query}" if url.query else ""))
    return found


def crawl(console: Console, seeds: list[str]) -> dict[str, int]:
    seen: dict[str, int] = {}
    frontier = set(seeds)
    for _hop in range(HOPS + 1):
        following: set[str] = set()
        for path in sorted(frontier - set(seen)):
            resp = console.get(path)
            seen[path] = resp.status_code
            if resp.mimetype == "text/html":
                following |= links_of(path, resp.text)
        frontier = following
    return seen


@pytest.fixture
def every_state(ctx, api, clock, test_env, redis_queues):
    """One organisation with data in every state the console shows."""
    serials = setup_org(api, "acme", ("taro", "jiro", "saburo"))
    revoked = api.post(f"/v1/certificates/{serials['jiro']}/revocation", role="operator", json={"reason": "key_compromise"})
    assert revoked.status == 200, revoked
    clock.travel(days=340)  # inside the renewal window: saburo's certificate is renewed (superseded)
    renewed = api.post(f"/v1/certificates/{serials['saburo']}/renewal", json={"csr": make_csr()[1]})
    assert renewed.status == 201, renewed
    clock.reset()
    now = ctx.clock.now()
    with ctx.engine.connect() as conn:  # a real certificate's DER: the pages parse it (the row's dates rule)
        der = conn.execute(select(Certificate.der).where(Certificate.serial == serials["taro"])).scalar_one()
    [expired] = insert_certificates(ctx, "acme", [{"login_id": "shiro", "not_after": now - timedelta(days=3)}], der=der)
    with ctx.engine.begin() as conn:
        for serial, login_id, status, error in (
            (serials["taro"], "taro", "sent", None),
            (serials["acme-boss"], "acme-boss", "failed", "550 mailbox unavailable"),
        ):
            conn.execute(
                Notice.__table__.insert().values(
                    kind="certificate_expiring", serial=serial, login_id=login_id, not_after=now, created_at=now,
                    email_status=status, email_attempts=1, email_last_error=error,
                    email_sent_at=now if status == "sent" else None,
                )
            )  # fmt: skip
    bob = operators.console_actor("bob")
    pending = approvals.request(ctx, bob, approvals.SWITCH, "acme", {"login_method": "id_password"}, "HD-1")
    settled = approvals.request(ctx, bob, approvals.REVOCATION, serials["acme-boss"], {"reason": "affiliation_changed"}, "HD-2")
    approvals.reject(ctx, operators.console_actor("carol"), settled.id)
    Queue("default", connection=Redis.from_url(test_env.redis_url)).enqueue(
        "workers.jobs.expiry_scan_job", kwargs={"as_of": "not-a-date"}
    )
    run_worker_burst(test_env)  # a real worker: the job fails
    checkpoint = audit_checkpoints.create(ctx)
    assert checkpoint is not None
    return {"serials": serials, "expired": expired, "renewal": renewed.json["serial"], "approvals": (pending.id, settled.id)}


def test_every_linked_console_page_answers_without_a_server_error_in_both_languages(ctx, every_state):
    alice = Console(create_app(ctx), make_operator(ctx, "hd-crawler"))  # own name: no TOTP-step wait
    for lang in ("ja", "en"):
        assert alice.get(f"/console/?lang={lang}").status_code == 200  # the language cookie
        seen = crawl(alice, ["/console/", "/console/?q=acme", "/console/audit", "/console/failures"])
        errors = {path: status for path, status in seen.items() if status >= 500}
        assert errors == {}, (lang, errors)
        reached(seen, every_state)
    page = alice.get("/console/audit?lang=ja").text
    assert re.search(r"#1: ", page) and "JST" in page  # the checkpoint, in Japan time


def reached(seen: dict[str, int], every_state: dict) -> None:
    serials = every_state["serials"]
    wanted = {
        "/console/audit", "/console/failures", "/console/crl", "/console/approvals",
        *(f"/console/approvals/{i}" for i in every_state["approvals"]),
        *(f"/console/certificates/{serials[u]}" for u in ("taro", "jiro", "saburo")),
        *(f"/console/certificates/{every_state[k]}" for k in ("expired", "renewal")),
        "/console/users/taro", "/console/organizations/acme",
    }  # fmt: skip
    assert wanted <= set(seen), sorted(wanted - set(seen))  # the crawl reached every state
    assert len(seen) > 20, len(seen)
    assert {seen[p] for p in wanted} == {200}
