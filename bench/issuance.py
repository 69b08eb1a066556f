"""Issuance throughput end to end over HTTP: gunicorn (production config) + PostgreSQL, wrk as
the separate load process, against the in-process signing limit measured in the same run.

    python -m bench.issuance [--requests 20000] [--seconds 10] [--stored 0,1000000] [--connections 16] [--orgs 1,100]

Users (and, for growth runs, already-issued certificates) are bulk-loaded with COPY; every
request carries a fresh pre-generated P-256 CSR for a different login ID. `--orgs N` spreads the
users over N organisations: the issuance brake makes one organisation's issuances take turns on
its row lock, so 1 (every request in one organisation, the worst case) against 100 is that lock's
cost.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.common import WRK_HEADERS, BenchEnv, certificate_columns, print_table, run_wrk
from bench.floors import cpu_ratio, healthz_run, issuance_transaction_floor
from bench.floors import ratio as ratio_to
from config.settings import load_settings

LUA = r"""
local bodies, paths = {}, {}
local counter, stride, index = 0, 1, 0
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
end
function init(args)
  stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    local login, body = line:match("([^\t]+)\t(.*)")
    paths[#paths + 1] = "/v1/users/" .. login .. "/certificates"
    bodies[#bodies + 1] = body
  end
  index = tid + 1
end
function request()
  local i = index
  index = index + stride
  if i > #bodies then i = ((i - 1) % #bodies) + 1 end
  return wrk.format("POST", paths[i], {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}, bodies[i])
end
"""


HEADERS = ["data", "issued/s", *WRK_HEADERS, "SQL-only floor/s", "/healthz/s", "ratio to /healthz", "CPU ratio", "ratio to limit"]


def make_csrs(count: int) -> list[str]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    out = []
    for _ in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        out.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return out


def in_process_limit(csrs: list[str]) -> float:
    """The floor: parse + verify CSR, build, sign P-256, PEM — no HTTP, no database."""
    from ca_service.pki.csr import check_csr
    from ca_service.pki.profile import ClientCertRequest, build_client_certificate, make_issuer_context

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    from ca_service.pki.signer import KeySigner

    issuer = make_issuer_context(
        ca, KeySigner("bench", ca_key), crl_url="http://x/crl", ocsp_url="http://x/ocsp", ca_cert_url="http://x/ca"
    )
    start = time.perf_counter()
    for pem in csrs:
        checked = check_csr(pem)
        req = ClientCertRequest("u", "o", "Bank", checked.public_key, x509.random_serial_number(), now, now + timedelta(days=365))
        build_client_certificate(req, issuer).public_bytes(serialization.Encoding.PEM)
    return len(csrs) / (time.perf_counter() - start)


def load_registry(env: BenchEnv, users: int, orgs: int = 1) -> None:
    """Users u0..u{users}; with `orgs` > 1, u{i} belongs to organisation bench-{i mod orgs}
    (bench-0 is the loader's `bench`)."""
    env.load_users("u", users)
    if orgs > 1:
        n = int(orgs)  # an int from argparse: nothing to escape
        env.sql(
            "INSERT INTO organizations (org_id, name, login_method, created_at, updated_at) "  # noqa: S608
            f"SELECT 'bench-' || g, 'Bench ' || g, 'certificate', now(), now() FROM generate_series(1, {n - 1}) g"
        )
        env.sql(
            f"UPDATE users SET org_id = 'bench-' || (substring(login_id from 2)::int % {n}) "  # noqa: S608
            f"WHERE login_id ~ '^u[0-9]+$' AND substring(login_id from 2)::int % {n} <> 0"
        )


def load_stored_certificates(env: BenchEnv, count: int, issuer_id: int) -> None:
    """`count` already-issued, current certificates for other login IDs (their own users
    s0..s{count}), issued one per second back from now, for growth runs."""
    if count <= 0:
        return
    env.load_users("s", count, with_org=False)
    issued = "now() - make_interval(secs => i)"
    columns = certificate_columns("stored", "s", current=True) | {
        "issued_at": issued, "not_before": issued, "not_after": f"{issued} + interval '365 days'",
    }  # fmt: skip
    env.generate("certificates", columns, count, issuer_id=issuer_id)
    env.settle("users", "certificates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000, help="pre-generated CSRs / users")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stored", default="0", help="comma-separated counts of already stored certificates")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the production setting)")
    parser.add_argument("--orgs", default="1", help="comma-separated counts of organisations the users are spread over")
    args = parser.parse_args()

    print(f"generating {args.requests} CSRs ...", flush=True)
    csrs = make_csrs(args.requests)
    limit = in_process_limit(csrs[: min(2000, len(csrs))])
    rows = []
    runs = [(int(s), int(o)) for s in args.stored.split(",") for o in args.orgs.split(",")]
    for stored, orgs in runs:
        env = BenchEnv(f"issuance_{stored}_{orgs}")
        try:
            env.init_ca()
            token = env.token("frontend")
            load_registry(env, args.requests, orgs)
            env.load_users("floor", args.requests, with_org=False)  # for the SQL-only floor
            if stored:
                issuer_id = env.issuing_ca_id()
                print(f"bulk-loading {stored:,} stored certificates ...", flush=True)
                t = time.perf_counter()
                load_stored_certificates(env, stored, issuer_id)
                print(f"  loaded in {time.perf_counter() - t:.1f}s", flush=True)
            bodies = env.workdir / "bodies.tsv"
            bodies.write_text("".join(f"u{i}\t{json.dumps({'csr': c})}\n" for i, c in enumerate(csrs)))
            script = env.workdir / "issue.lua"
            script.write_text(LUA)
            base = env.start_api({"CA_GUNICORN_WORKERS": str(args.workers)} if args.workers else {})
            threads = 2
            os.environ.update(BENCH_BODIES=str(bodies), BENCH_TOKEN=token, BENCH_THREADS=str(threads))
            seconds = min(args.seconds, max(1, args.requests // 2500))
            result = run_wrk(
                base, script, seconds=seconds, connections=args.connections, threads=threads, server=env.processes[-1]
            )
            floor = healthz_run(env, base, seconds=min(3, args.seconds), connections=args.connections)
            healthz = floor.requests_per_second
            workers = args.workers or load_settings().gunicorn_workers  # as many processes as gunicorn has
            sql_only = issuance_transaction_floor(env, "floor", args.requests, processes=workers)
            ratio = f"{result.requests_per_second / limit:.2f}"
            to_healthz = ratio_to(result.requests_per_second, healthz)
            rows.append(
                [
                    f"{stored:,} stored, {orgs} org{'s' if orgs > 1 else ''}",
                    *result.cells(),
                    round(sql_only, 1),
                    round(healthz, 1),
                    to_healthz,
                    cpu_ratio(result, floor),
                    ratio,
                ]
            )
        finally:
            env.stop()
    print_table(f"Issuance over HTTP (in-process parse+verify+sign limit {limit:,.0f}/s on one core)", HEADERS, rows)


if __name__ == "__main__":
    main()
