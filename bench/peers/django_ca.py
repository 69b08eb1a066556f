"""ca-service against django-ca 3.2, measured side by side in one run on this machine: issuance
over HTTP, OCSP fresh-signed and cached, CRL of N revoked certificates from the database, and each
framework's trivial floor (/healthz), interleaved path by path, same gunicorn worker settings, same
wrk client and scripts, each on its own PostgreSQL database and Redis database.

    python -m bench.peers.django_ca [--quick] [--crl-entries 100000,1000000] [--crl-timeout 150]

django-ca runs from its own virtualenv (var/peers/django-ca-venv, built on the first run) with
bench/peers/django_project/django_ca_site; see bench/peers/README.md for what each path is on each side. One
benchmark-only setting on the peer, printed with the results: Django's MD5 password hasher.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

import requests
from cryptography import x509

from bench.common import WRK_HEADERS, BenchEnv, WrkResult, peak_rss_mb_of_tree, print_table
from bench.crl_publication import CHILD as OURS_CRL_CHILD
from bench.crl_publication import load_revoked
from bench.floors import HEALTHZ_LUA
from bench.issuance import LUA as OURS_ISSUE_LUA
from bench.issuance import load_registry, load_stored_certificates, make_csrs
from bench.login_checks import LUA as OURS_CHECK_LUA
from bench.login_checks import issue_in_process, login_check_body
from bench.ocsp import LUA as OCSP_LUA
from bench.peers.django_ca_http import PEER_CERT_LUA, PEER_FLOW_LUA, PEER_SIGN_LUA, Runner, check_ocsp, ocsp_paths
from bench.peers.django_ca_peer import PASSWORD, USER, DjangoCA, claim_redis_db, release_redis_db
from config.settings import load_settings

HASHER_NOTE = (
    "django-ca is configured with Django's MD5PasswordHasher for this benchmark (its API checks the HTTP Basic "
    "password on every request; with the default PBKDF2, issue 16 reports ~3 issuances/s on this machine)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and 3 s runs: a smoke run, not figures")
    parser.add_argument("--crl-entries", default=None, help="comma-separated (default 100000,1000000; quick 10000)")
    parser.add_argument("--crl-timeout", type=int, default=150, help="seconds django-ca may take for one CRL")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=None, help="rounds over the HTTP paths (default 2; quick 1)")
    args = parser.parse_args()
    quick = args.quick
    n_requests, stored, distinct, seconds = (3000, 10_000, 500, 3) if quick else (20_000, 100_000, 5000, 8)
    crl_sizes = [int(x) for x in (args.crl_entries or ("10000" if quick else "100000,1000000")).split(",")]
    ours_redis = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/12"
    peer_redis = os.environ.get("BENCH_PEER_REDIS_URL") or "redis://127.0.0.1:6379/13"
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", load average {os.getloadavg()[0]:.1f}"

    claims = [(ours_redis, claim_redis_db(ours_redis)), (peer_redis, claim_redis_db(peer_redis))]
    env = BenchEnv("peers")
    peer: DjangoCA | None = None
    try:
        peer = DjangoCA(peer_redis)
        print(f"generating {n_requests:,} CSRs ...", flush=True)
        csrs = make_csrs(n_requests)
        run = Runner(env.workdir, seconds, args.connections)
        http = measure_http(env, peer, run, csrs, stored, distinct, ours_redis, args.rounds or (1 if quick else 2))
        crl = measure_crl(peer, crl_sizes, args.crl_timeout)
    finally:
        env.stop()
        if peer is not None:
            peer.close()
        for url, token in claims:
            release_redis_db(url, token)
    report(http, crl, started, stored, distinct, quick)


def measure_http(
    env: BenchEnv, peer: DjangoCA, run: Runner, csrs: list[str], stored: int, distinct: int, ours_redis: str, rounds: int
) -> dict[str, list[WrkResult]]:
    """Each path on both servers back to back, `rounds` times, the order flipped every round
    (ours-theirs, theirs-ours, ...) so that a drift of the machine's speed hits both sides alike."""
    settings = load_settings(env.env())
    workers, threads, timeout = settings.gunicorn_workers, settings.gunicorn_threads, settings.gunicorn_timeout
    print(f"ca-service: CA, {len(csrs):,} users, {stored:,} stored certificates (10% revoked) ...", flush=True)
    env.init_ca()
    token = env.token("frontend")
    load_registry(env, len(csrs))
    issuer_id = env.issuing_ca_id()
    load_stored_certificates(env, stored, issuer_id)
    env.sql("UPDATE certificates SET revoked_at = now(), revocation_reason = 'key_compromise' WHERE id % 10 = 0")
    env.settle("certificates")
    checked = min(distinct, 2000)  # ca-service's login checks: certificates issued to l0..l{checked}
    print(f"ca-service: {checked:,} certificates issued in process for the login checks ...", flush=True)
    env.load_users("l", checked, with_org=False)
    pems, _ = issue_in_process(env, checked, prefix="l")
    print(f"django-ca: migrate, init_ca (P-256), API user, {stored:,} stored certificates (10% revoked) ...", flush=True)
    peer.init()
    peer.load_certificates(stored, revoked_every=10)
    assert peer.issuer is not None
    der = env.scalar(f"SELECT der FROM certificate_authorities WHERE id = {issuer_id}")  # noqa: S608
    ours_issuer = x509.load_der_x509_certificate(bytes(der))  # type: ignore[call-overload]
    serials = {"ours": [(int(str(s), 16), bool(r)) for s, r in _ours_serials(env, distinct)],
               "peer": [(int(s, 16), r) for s, r in peer.serials(distinct)]}  # fmt: skip
    api = f"/django_ca/api/ca/{peer.ca_serial}/"
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    share = len(csrs) // rounds  # ca-service's users: each round its own (one certificate each)
    ours_bodies = [
        run.lines(f"ours-bodies-{r}.tsv", [f"u{i}\t{json.dumps({'csr': csrs[i]})}" for i in range(r * share, (r + 1) * share)])
        for r in range(rounds)
    ]
    peer_body = [{"csr": c, "subject": [{"oid": "2.5.4.3", "value": f"u{i}"}], "profile": "client"} for i, c in enumerate(csrs)]
    peer_bodies = run.lines("peer-bodies.jsonl", [json.dumps(body) for body in peer_body])
    check_bodies = run.lines("ours-checks.jsonl", [login_check_body(f"l{i}", pem) for i, pem in enumerate(pems)])
    peer_checks = run.lines("peer-checks.txt", [f"{api}certs/{s:X}/" for s, _ in serials["peer"]])
    pregenerated = peer.tool(
        "ocsp-cache", run.lines("peer-serials.txt", [f"{s:X}" for s, _ in serials["peer"]]), BENCH_PEER_OCSP_CACHE="1"
    )
    print(f"  django-ca pre-generated {pregenerated['responses']} OCSP responses in {float(str(pregenerated['seconds'])):.1f}s")
    ours = env.start_api({"REDIS_URL": ours_redis})
    server = {"ours": env.processes[-1]}
    base = {"ours": ours}
    prefix = {"ours": "/ocsp/", "peer": f"/django_ca/ocsp/{peer.ca_serial}/cert/"}
    issuer = {"ours": ours_issuer, "peer": peer.issuer}
    out: dict[str, list[WrkResult]] = defaultdict(list)
    peer_api = {"BENCH_PATHS": peer_bodies, "BENCH_API": api, "BENCH_AUTH": auth}
    paths_files: dict[str, str] = {}

    def step(who: str, key: str, r: int) -> WrkResult:
        if key == "healthz":
            return run.wrk(base[who] + "/healthz", HEALTHZ_LUA, server[who], seconds=3)
        if key == "issue" and who == "ours":
            return run.wrk(base[who], OURS_ISSUE_LUA, server[who], BENCH_BODIES=ours_bodies[r], BENCH_TOKEN=token)
        if key == "issue":
            return run.wrk(base[who], PEER_SIGN_LUA, server[who], env=peer_api)
        if key == "check" and who == "ours":
            return run.wrk(base[who], OURS_CHECK_LUA, server[who], BENCH_BODIES=check_bodies, BENCH_TOKEN=token)
        if key == "check":
            return run.wrk(base[who], PEER_CERT_LUA, server[who], BENCH_PATHS=peer_checks, BENCH_AUTH=auth)
        return run.wrk(base[who], OCSP_LUA, server[who], BENCH_PATHS=paths_files[who])

    for r in range(rounds):
        order = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
        print(f"round {r + 1}/{rounds}, {' before '.join(order)} on each path ({workers} workers x {threads} threads) ...")
        for cached in (False, True):  # django-ca: CA_OCSP_RESPONSE_CACHE_EXPIRES unset, then set
            base["peer"] = peer.start(workers, threads, timeout, ocsp_cache=cached)
            server["peer"] = peer.servers[-1]
            name = "ocsp cached" if cached else "ocsp fresh"
            for who in order:
                paths = ocsp_paths(prefix[who], issuer[who], serials[who], nonce=not cached)
                paths_files[who] = run.lines(f"{who}-{name.replace(' ', '-')}.txt", paths)
                check_ocsp(base[who], paths, serials[who])
            if not cached:
                _check_certificate_checks(base, check_bodies, peer_checks, token, auth)
            keys = ["healthz", name] if cached else ["healthz", "issue", "check", name]
            for key in keys:
                if key == "ocsp cached":  # both caches warm first: the steady state of a cache hit
                    for who in order:  # django-ca's is Redis (one pass); ours is each worker's LRU (~3 per serial and worker)
                        warm = max(2, distinct * workers * 3 // 2000) if who == "ours" else max(2, distinct // 1500)
                        run.wrk(base[who], OCSP_LUA, None, seconds=warm, BENCH_PATHS=paths_files[who])
                for who in order:
                    out[f"{who} {key}"].append(step(who, key, r))
                if key == "issue":  # and django-ca's whole flow, right after its POST
                    orders = _settled_orders(peer)
                    out["peer issue flow"].append(flow := run.wrk(base["peer"], PEER_FLOW_LUA, server["peer"], env=peer_api))
                    _check_orders(peer, flow, orders, run.connections)
            peer.stop_servers()
    for proc in env.processes:
        proc.terminate()
        proc.wait(30)
    env.processes.clear()
    for key, results in out.items():
        for result in results:
            if result.total == 0 or result.non_2xx:
                raise SystemExit(f"{key}: {result.total} requests, {result.non_2xx} non-2xx: not a measurement")
    return out


def _check_certificate_checks(base: dict[str, str], check_bodies: str, peer_checks: str, token: str, auth: str) -> None:
    """The first answers of both certificate-check paths are what they should be before timing."""
    with open(check_bodies) as bodies, open(peer_checks) as paths:
        for body, path in list(zip(bodies, paths, strict=False))[:20]:
            ours = requests.post(base["ours"] + "/v1/login-checks", data=body, timeout=10,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
            if ours.status_code != 200 or ours.json().get("allowed") is not True:
                raise SystemExit(f"ca-service login check: {ours.status_code} {ours.text[:200]}")
            theirs = requests.get(base["peer"] + path.strip(), headers={"Authorization": auth}, timeout=10)
            if theirs.status_code != 200 or "revoked" not in theirs.json():
                raise SystemExit(f"django-ca certificate lookup: {theirs.status_code} {theirs.text[:200]}")


def _settled_orders(peer: DjangoCA) -> int:
    time.sleep(2)  # the requests wrk left in flight at its end finish first
    return int(str(peer.scalar("SELECT count(*) FROM django_ca_certificateorder")))


def _check_orders(peer: DjangoCA, flow: WrkResult, orders_before: int, connections: int) -> None:
    """Every order issued, and the flow's requests are three per order (POST, order, certificate)
    but for the flows cut by the end of the run: so flows/s = requests/s / 3."""
    new_orders = _settled_orders(peer) - orders_before
    failed = peer.scalar(
        "SELECT string_agg(status || ' ' || error, '; ') FROM django_ca_certificateorder WHERE status <> 'issued'"
    )
    if failed or new_orders <= 0 or abs(flow.total - 3 * new_orders) > 3 * connections:
        raise SystemExit(f"django-ca flow: {flow.total} requests for {new_orders} orders; orders not issued: {failed}")


def _ours_serials(env: BenchEnv, count: int) -> list[tuple[object, object]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(env.database_url)
    with engine.connect() as conn:
        query = "SELECT serial, revoked_at IS NOT NULL FROM certificates ORDER BY random() LIMIT :n"
        rows = [(s, r) for s, r in conn.execute(text(query), {"n": count})]
    engine.dispose()
    return rows


def measure_crl(peer: DjangoCA, sizes: list[int], timeout: int) -> list[list[object]]:
    """Per size: ca-service's CRL publication (bench/crl_publication.py's child) and django-ca's
    CRL generation, each from N revoked certificates bulk-loaded in its own database."""
    rows: list[list[object]] = []
    for n in sizes:
        print(f"CRL of {n:,}: ca-service ...", flush=True)
        env = BenchEnv(f"peers_crl_{n}")
        try:
            env.init_ca()
            load_revoked(env, n)
            out = subprocess.run(
                [sys.executable, "-c", OURS_CRL_CHILD], env=env.env(), capture_output=True, text=True, check=True
            )
            ours = json.loads(out.stdout.strip().splitlines()[-1])
            if ours["entries"] != n:
                raise SystemExit(f"ca-service CRL: {ours['entries']} entries for {n} revoked")
        finally:
            env.stop()
        print(f"CRL of {n:,}: django-ca (at most {timeout} s) ...", flush=True)
        peer.load_certificates(n, revoked_every=1)
        theirs = _peer_crl(peer, n, timeout)
        ratio = f"{theirs['seconds'] / ours['seconds']:.1f}" if theirs["done"] else f"> {timeout / ours['seconds']:.0f}"
        shown = f"{theirs['seconds']:.2f}" if theirs["done"] else f"> {timeout} (stopped)"
        rows.append([f"{n:,}", round(ours["seconds"], 2), round(ours["peak_mb"]), shown, round(theirs["peak_mb"]), ratio])
    return rows


def _peer_crl(peer: DjangoCA, n: int, timeout: int) -> dict[str, float | bool]:
    """django-ca's CRL in a child with a time limit; a finished CRL must list exactly the stored
    revoked serials (the check that the patched-serial DER rows are read as django-ca reads real ones)."""
    out_file = peer.workdir / "crl.der"
    argv = [str(peer.python), "-m", "django_ca_site.tool", "crl", str(out_file)]
    proc = subprocess.Popen(argv, env=peer.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, peak_rss_mb_of_tree(proc.pid))
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        return {"done": False, "seconds": float(timeout), "peak_mb": peak}
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"django-ca CRL failed ({proc.returncode}):\n{stdout}\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    crl = x509.load_der_x509_crl(out_file.read_bytes())
    listed = {f"{entry.serial_number:X}" for entry in crl}
    with_db = {str(s) for s, _ in peer.serials(n + 1)}
    if len(listed) != n or listed != with_db:
        raise SystemExit(f"django-ca CRL lists {len(listed)} serials; {len(listed ^ with_db)} differ from the database's {n}")
    return {"done": True, "seconds": float(result["seconds"]), "peak_mb": float(result["peak_mb"])}


def report(
    http: dict[str, list[WrkResult]], crl: list[list[object]], started: str, stored: int, distinct: int, quick: bool
) -> None:
    def rate(key: str, per: int = 1) -> tuple[float, str]:
        """The mean over the rounds, and the text: mean, with the rounds' range when there are several."""
        values = [r.requests_per_second / per for r in http[key]]
        mean = sum(values) / len(values)
        spread = f" ({min(values):,.0f}-{max(values):,.0f})" if len(values) > 1 else ""
        return mean, f"{mean:,.1f}{spread}"

    floor = {who: rate(f"{who} healthz")[0] for who in ("ours", "peer")}
    paths = [
        ("trivial floor: /healthz (ca-service) vs a trivial Django view", "healthz", "peer healthz", 1),
        ("issuance over HTTP: django-ca POST only", "issue", "peer issue", 1),
        ("issuance over HTTP: django-ca POST + GET order + GET cert (/3)", "issue", "peer issue flow", 3),
        ("certificate check: ca-service login check vs django-ca GET certs/{serial}/", "check", "peer check", 1),
        ("OCSP fresh-signed (nonce; django-ca cache off)", "ocsp fresh", "peer ocsp fresh", 1),
        ("OCSP cached (django-ca: pre-generated, in Redis)", "ocsp cached", "peer ocsp cached", 1),
    ]
    rows: list[list[object]] = []
    for label, ours_key, peer_key, per in paths:
        (o, o_text), (p, p_text) = rate(f"ours {ours_key}"), rate(peer_key, per)
        rows.append([label, o_text, p_text, f"{o / p:.2f}", f"{o / floor['ours']:.0%}", f"{p / floor['peer']:.0%}"])
    rounds = len(http["ours issue"])
    kind = "QUICK (smoke sizes, not figures)" if quick else "full"
    print(f"\nrun started {started}, ended with load average {os.getloadavg()[0]:.1f}; {kind}; {rounds} round(s), "
          "order flipped each round; the machine was shared with other work")  # fmt: skip
    print_table(
        f"ca-service vs django-ca 3.2: /s, mean (range) over the rounds ({stored:,} stored, {distinct:,} OCSP serials)",
        ["path", "ca-service /s", "django-ca /s", "ratio ours/theirs", "ours % of own floor", "django-ca % of own floor"],
        rows,
    )
    detail = [[f"{key} #{i + 1}", round(r.requests_per_second, 1), *r.cells()[1:]]
              for key, results in http.items() for i, r in enumerate(results)]  # fmt: skip
    print_table(
        "each wrk run, #n in time order per path (django-ca flow: requests/s, three requests per certificate)",
        ["run", "requests/s", *WRK_HEADERS],
        detail,
    )
    print_table(
        "CRL of N revoked certificates from the database (ca-service: published to disk; django-ca: its user CRL, stored)",
        ["entries", "ca-service s", "ca-service peak MB", "django-ca s", "django-ca peak MB", "django-ca time / ours"],
        crl,
    )
    print(f"\n{HASHER_NOTE}.")


if __name__ == "__main__":
    main()
