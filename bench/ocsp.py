"""OCSP responses per second over HTTP: gunicorn (production config) + PostgreSQL + Redis, wrk as
the separate load process, GET /ocsp/{base64} requests for stored certificates.

    python -m bench.ocsp [--stored 100000] [--distinct 1000] [--seconds 10] [--rounds 3] [--connections 16]

Scenarios, on one server and in one run: `/healthz` (the floor every ratio is taken against),
`cached` by GET and by POST (no nonce: every worker's LRU warmed with every serial first, so the
pre-signed response is served from the LRU without a database read), `fresh` (a nonce in every request: each response is
signed); then on a second server `Redis down` (REDIS_URL points nowhere: responses signed from the
database, then cached per process with the status compared on every request). Also prints the
in-process cost of building and signing one response.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.common import WRK_HEADERS, BenchEnv, WrkResult, print_table, run_wrk
from bench.floors import healthz_run, interleaved, ratio
from bench.issuance import load_registry, load_stored_certificates
from bench.peers.django_ca_peer import claim_redis_db, release_redis_db
from ca_service.pki.ocsp import issuer_hashes
from config.settings import load_settings

LUA = r"""
local paths = {}
local counter, stride, index = 0, 1, 0
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
end
function init(args)
  stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
  index = tid + 1
end
function request()
  local i = ((index - 1) % #paths) + 1
  index = index + stride
  return wrk.format("GET", paths[i])
end
"""

POST_LUA = r"""
local bodies = {}
local counter, stride, index = 0, 1, 0
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
end
local function unhex(h) return (h:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end)) end
function init(args)
  stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  for line in io.lines(os.getenv("BENCH_POST_BODIES")) do bodies[#bodies + 1] = unhex(line) end
  index = tid + 1
end
function request()
  local i = ((index - 1) % #bodies) + 1
  index = index + stride
  return wrk.format("POST", "/ocsp", {["Content-Type"] = "application/ocsp-request"}, bodies[i])
end
"""


def request_paths(issuer: x509.Certificate, serials: list[str], *, nonce: bool) -> list[str]:
    # CertID hashes of the issuer (name hash of its subject, key hash of its key), as clients send.
    name_hash, key_hash = issuer_hashes(issuer, hashes.SHA1())  # noqa: S303 - the RFC 5019 CertID
    out = []
    for serial in serials:
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            name_hash,
            key_hash,
            int(serial, 16),
            hashes.SHA1(),  # noqa: S303 - the RFC 5019 CertID
        )
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
        der = builder.build().public_bytes(serialization.Encoding.DER)
        out.append("/ocsp/" + quote(base64.b64encode(der).decode(), safe=""))
    return out


def in_process_signing(env: BenchEnv, issuer: x509.Certificate, serials: list[str], count: int = 2000) -> float:
    """Responses built and signed per second on one core, no HTTP, no database (the floor)."""
    from ca_service.context import build_context
    from ca_service.pki.ocsp import build_response, parse_request
    from ca_service.services.authority import responder_certificates as ocsp_signer
    from config.settings import load_settings

    ctx = build_context(load_settings(env.env()), pool_size=1)
    issuer_id = env.issuing_ca_id()
    responder = ocsp_signer.responder_for(ctx, issuer_id)
    paths = request_paths(issuer, serials[:count], nonce=True)
    parsed = [
        parse_request(base64.b64decode(p[len("/ocsp/") :].replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")))
        for p in paths
    ]
    now = datetime.now(UTC).replace(microsecond=0)
    start = time.perf_counter()
    for req in parsed:
        build_response(
            request=req,
            issuer_cert=issuer,
            responder_cert=responder.certificate,
            responder_key=responder.signer,
            status="good",
            revoked_at=None,
            reason=None,
            this_update=now,
            next_update=now + timedelta(hours=1),
        )
    rate = len(parsed) / (time.perf_counter() - start)
    ctx.engine.dispose()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=100_000, help="certificates in the database")
    parser.add_argument("--distinct", type=int, default=1000, help="distinct serials asked about")
    parser.add_argument("--seconds", type=int, default=10, help="per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of /healthz and each scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the production setting)")
    args = parser.parse_args()

    redis_url = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/14"
    redis_claim = claim_redis_db(redis_url)  # claimed as the tests claim theirs: never someone else's flushed
    env = BenchEnv("ocsp")
    rows = []
    try:
        env.init_ca()
        load_registry(env, 0)
        issuer_id = env.issuing_ca_id()
        print(f"bulk-loading {args.stored:,} stored certificates ...", flush=True)
        load_stored_certificates(env, args.stored, issuer_id)
        env.sql("UPDATE certificates SET revoked_at = now(), revocation_reason = 'key_compromise' WHERE id % 10 = 0")
        env.settle("certificates")  # the UPDATE above left 10% dead rows
        issuer = x509.load_der_x509_certificate(
            bytes(env.scalar(f"SELECT der FROM certificate_authorities WHERE id = {issuer_id}"))  # type: ignore[call-overload]  # noqa: S608
        )
        serials = [str(s) for s in _serials(env, args.distinct)]
        signing = in_process_signing(env, issuer, serials)
        script = env.workdir / "ocsp.lua"
        script.write_text(LUA)
        post_script = env.workdir / "ocsp-post.lua"
        post_script.write_text(POST_LUA)
        threads = 2
        extra = {"CA_GUNICORN_WORKERS": str(args.workers)} if args.workers else {}
        run = {"seconds": args.seconds, "connections": args.connections, "threads": threads}
        plain, nonced = (env.workdir / "paths.txt", env.workdir / "paths-nonce.txt")
        plain.write_text("\n".join(request_paths(issuer, serials, nonce=False)) + "\n")
        nonced.write_text("\n".join(request_paths(issuer, serials, nonce=True)) + "\n")
        bodies = env.workdir / "post-bodies.txt"
        bodies.write_text("".join(_der_of(path).hex() + "\n" for path in plain.read_text().splitlines()))
        os.environ.update(BENCH_THREADS=str(threads), BENCH_POST_BODIES=str(bodies))
        # One server, with Redis, for the floor and the cached and fresh scenarios (same run, same config).
        base = env.start_api({"REDIS_URL": redis_url, **extra})
        server = env.processes[-1]
        _check_answers(base, plain)
        os.environ["BENCH_PATHS"] = str(plain)
        # Warm every worker's LRU with every serial (a worker's first request for a serial reads the
        # database, like a Redis hit): ~3 requests per serial and worker.
        workers = args.workers or load_settings().gunicorn_workers
        warm = max(3, args.distinct * workers * 3 // 1000)
        run_wrk(base, script, seconds=warm, connections=args.connections, threads=threads)
        _check_answers(base, nonced)

        def wrk(lua: Path, paths: Path) -> Callable[[], WrkResult]:
            def one() -> WrkResult:
                os.environ["BENCH_PATHS"] = str(paths)
                return run_wrk(base, lua, server=server, **run)

            return one

        rows.extend(
            interleaved(
                args.rounds,
                [
                    ("/healthz (the floor)", lambda: healthz_run(env, base, **run)),
                    ("cached, GET (no nonce)", wrk(script, plain)),
                    ("cached, POST (no nonce)", wrk(post_script, plain)),
                    ("fresh-signed, GET (nonce)", wrk(script, nonced)),
                ],
            )
        )
        floor, floor_cpu = float(str(rows[0][1])), float(str(rows[0][7]))  # rate, service CPU ms (WRK_HEADERS)
        _stop_servers(env)
        base = env.start_api({"REDIS_URL": "redis://127.0.0.1:1/0", **extra})
        os.environ["BENCH_PATHS"] = str(plain)
        _check_answers(base, plain)
        result = run_wrk(base, script, server=env.processes[-1], **run)
        cpu = f"{100 * floor_cpu / result.service_cpu_ms:.0f}%" if result.service_cpu_ms else "nan"
        rows.append(["no nonce, Redis down", *result.cells(), ratio(result.requests_per_second, floor), cpu])
        _stop_servers(env)
    finally:
        env.stop()
        release_redis_db(redis_url, redis_claim)
    print_table(
        f"OCSP over HTTP, {args.stored:,} stored certificates, {args.distinct:,} distinct serials "
        f"(in-process build+sign: {signing:,.0f}/s on one core)",
        ["scenario", "responses/s", *WRK_HEADERS, "ratio to /healthz", "CPU ratio"],
        rows,
    )


def _stop_servers(env: BenchEnv) -> None:
    for proc in env.processes:
        proc.terminate()
        proc.wait(30)
    env.processes.clear()


def _der_of(path: str) -> bytes:
    from urllib.parse import unquote

    return base64.b64decode(unquote(path[len("/ocsp/") :]))


def _check_answers(base: str, paths_file: Path) -> None:
    """Refuse to time errors: the first requests must get signed good/revoked answers."""
    import requests

    for path in paths_file.read_text().splitlines()[:20]:
        resp = ocsp.load_der_ocsp_response(requests.get(base + path, timeout=10).content)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL or resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
            raise SystemExit(f"unexpected OCSP answer for {path}: {resp.response_status}")


def _serials(env: BenchEnv, count: int) -> list[object]:
    from sqlalchemy import create_engine, text

    engine = create_engine(env.database_url)
    with engine.connect() as conn:
        values = list(conn.execute(text("SELECT serial FROM certificates ORDER BY random() LIMIT :n"), {"n": count}).scalars())
    engine.dispose()
    return values


if __name__ == "__main__":
    main()
