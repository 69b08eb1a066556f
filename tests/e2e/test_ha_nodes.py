"""Two API nodes (two `ca-service serve`) behind nginx and two RQ workers (issue 18): a revocation
made on one node is refused at login on the other at once, OCSP on both says revoked within 1 s,
and CRL publications by both workers coalesce with strictly increasing numbers, never two CRLs
with one number (checked with openssl)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ca_service.services.authority.hierarchy import active_ca
from ca_service.store.models import Certificate, Crl
from tests.support.api import Api
from tests.support.background import wait_for
from tests.support.ha import Nginx
from tests.support.pki import make_csr, openssl
from tests.support.workers import empty_queues, insert_certificates

pytestmark = pytest.mark.ha  # slow: their own CI step (.ci/run)


@dataclass
class Cluster:
    a: Api
    b: Api
    lb: Api


@pytest.fixture(scope="module")
def cluster(live_processes, test_env, tmp_path_factory) -> Iterator[Cluster]:
    empty_queues(test_env.redis_url)
    stamp = time.monotonic_ns()
    names = [f"api-a-{stamp}", f"api-b-{stamp}", f"worker-1-{stamp}", f"worker-2-{stamp}"]
    a = live_processes.start_api(workers=2, name=names[0])
    b = live_processes.start_api(workers=2, name=names[1])
    for name in names[2:]:
        live_processes.start(name, ["worker"])
    lb = Nginx(tmp_path_factory.mktemp("nginx"), [a, b])
    lb.start()
    tokens = live_processes.tokens
    yield Cluster(Api(tokens, base_url=a), Api(tokens, base_url=b), Api(tokens, base_url=lb.url))
    lb.stop()
    for name in names:
        assert live_processes.processes[name].stop() == 0


def _ocsp(node: Api, directory: Path) -> str:
    out = openssl(
        "ocsp", "-issuer", "issuing.pem", "-CAfile", "chain.pem", "-cert", "leaf.pem",
        "-url", f"{node.base_url}/ocsp", "-no_nonce", cwd=directory,
    )  # fmt: skip
    return out.stdout + out.stderr


def _login(node: Api, login_id: str, pem: str) -> dict:
    r = node.post("/v1/login-checks", json={"login_id": login_id, "method": "certificate", "certificate_pem": pem})
    assert r.status == 200, r
    return r.json


def test_a_revocation_on_one_node_is_refused_at_login_and_by_ocsp_on_the_other(cluster, ctx, tmp_path):
    lb = cluster.lb
    lb.org("acme")
    lb.user("boss", "acme", role="master")
    lb.user("alice", "acme")
    issued = lb.issue("alice", make_csr()[1]).json
    pem, chain = issued["certificate_pem"], issued["chain_pem"]
    (tmp_path / "leaf.pem").write_text(pem)
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "issuing.pem").write_text(chain[: chain.index("-----END CERTIFICATE-----") + 26])
    for node in (cluster.a, cluster.b):  # both nodes have answered `good` (and cached the response)
        assert _login(node, "alice", pem)["allowed"] is True
        out = _ocsp(node, tmp_path)
        assert "Response verify OK" in out and "leaf.pem: good" in out, out
    revoked = cluster.a.post(
        f"/v1/certificates/{issued['serial']}/revocation",
        json={"reason": "key_compromise", "acting_login_id": "boss"},
    )
    assert revoked.status == 200, revoked
    refused = _login(cluster.b, "alice", pem)  # the other node, at once
    assert refused["allowed"] is False and refused["reason"] == "revoked"
    # Each node's FIRST OCSP answer after the commit (no polling, both had cached `good`) is
    # `revoked`: the staleness is zero requests, within the 1 s bound. The wall time of these
    # two `openssl ocsp` runs is openssl's start-up on a busy machine, not the service's, so it
    # is not asserted (it exceeded 1 s once with an image build running beside the test).
    for node in (cluster.b, cluster.a):
        out = _ocsp(node, tmp_path)
        assert "Response verify OK" in out and "leaf.pem: revoked" in out, out


def _crl_number(der: bytes, directory: Path) -> int:
    path = directory / f"crl-{threading.get_ident()}.der"  # one file per reader thread
    path.write_bytes(der)
    out = openssl("crl", "-inform", "DER", "-in", str(path), "-noout", "-crlnumber", check=True).stdout
    return int(out.strip().split("=")[1], 16)


def test_publications_by_two_workers_coalesce_into_one_sequence(cluster, ctx, tmp_path):
    lb = cluster.lb
    lb.org("acme")
    lb.user("template", "acme")
    lb.issue("template", make_csr()[1])
    with ctx.sessions() as s:
        der = s.scalars(select(Certificate.der)).one()
    not_after = ctx.clock.now() + timedelta(days=300)
    serials = insert_certificates(ctx, "acme", [{"login_id": f"h{i}", "not_after": not_after} for i in range(200)], der=der)
    seen: dict[str, set[int]] = {}  # DER digest -> CRL numbers (from openssl)
    order: list[int] = []  # numbers in the order one reader saw them
    stop = threading.Event()

    errors: list[BaseException] = []

    def read_crls(node: Api, record: bool) -> None:
        try:
            while not stop.is_set():
                r = node.get("/crl/issuing.crl", role=None)
                if r.status == 200:
                    number = _crl_number(r.content, tmp_path)
                    seen.setdefault(hashlib.sha256(r.content).hexdigest(), set()).add(number)
                    if record and (not order or order[-1] != number):
                        order.append(number)
                time.sleep(0.05)
        except BaseException as exc:  # a CRL openssl cannot read fails the test
            errors.append(exc)

    # A CRL before the revocations, seen by both readers, so that what they see afterwards is a change
    # whatever the timing of the workers (the first publication could otherwise hold all 200).
    assert cluster.a.post("/v1/crl/publications", role="operator").status == 202
    wait_for(lambda: cluster.b.get("/v1/crl").status == 200, timeout=60)
    before = cluster.b.get("/v1/crl").json["crl_number"]
    readers = [threading.Thread(target=read_crls, args=(n, n is cluster.a)) for n in (cluster.a, cluster.b)]
    for t in readers:
        t.start()
    wait_for(lambda: before in order, timeout=30)
    nodes = [cluster.a, cluster.b]

    def revoke(i: int) -> int:  # alternately through each node
        return (
            nodes[i % 2].post(f"/v1/certificates/{serials[i]}/revocation", role="operator", json={"reason": "unspecified"}).status
        )

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(revoke, range(len(serials)))) == [200] * len(serials)

    def all_on_crl() -> bool:
        r = cluster.b.get("/v1/crl")
        return r.status == 200 and r.json["entries"] == len(serials)

    wait_for(all_on_crl, timeout=60)
    final = cluster.b.get("/v1/crl").json["crl_number"]
    wait_for(lambda: bool(order) and order[-1] == final, timeout=30)  # node a's reader got the last one
    stop.set()
    for t in readers:
        t.join(10)
    assert not errors, errors
    assert len(seen) >= 2 and final > before  # the readers saw the CRLs change while the workers published
    with ctx.sessions() as s:
        issuing = active_ca(s, "issuing").id
        rows = s.execute(select(Crl.crl_number, Crl.der).where(Crl.issuer_id == issuing).order_by(Crl.id)).all()
    numbers = [n for n, _ in rows]
    assert numbers == sorted(set(numbers))  # strictly increasing, in the order they were made
    assert 2 <= len(numbers) <= 13, numbers  # coalesced: a handful for 200 revocations, not 200
    by_number = {n: hashlib.sha256(d).hexdigest() for n, d in rows}
    for digest, nums in seen.items():  # what the nodes served: one content per number, as stored
        assert len(nums) == 1 and by_number[next(iter(nums))] == digest
    assert order == sorted(set(order))  # a reader never saw the number go back
