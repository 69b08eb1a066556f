"""Login checks (POST /v1/login-checks, method=certificate): throughput at saturation and latency
at a paced 1,000 checks/s, through gunicorn (production config) + PostgreSQL, wrk as the load.
The floor is the ECDSA P-256 verify of the presented certificate, measured in the same run.

    python -m bench.login_checks [--users 2000] [--stored 0,1000000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import partial
from pathlib import Path

import requests
from cryptography import x509

from bench.common import WRK_HEADERS, BenchEnv, WrkResult, print_table, run_wrk
from bench.floors import healthz_run, interleaved
from bench.issuance import load_registry, load_stored_certificates, make_csrs

LUA = r"""
local bodies = {}
local counter, index = 0, 0
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function init(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
  index = tid * 7919
end
function delay() return pause end
function request()
  index = index + 1
  return wrk.format("POST", "/v1/login-checks", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}, bodies[(index % #bodies) + 1])
end
"""


def verify_floor(certs: list[x509.Certificate], issuer: x509.Certificate) -> float:
    start = time.perf_counter()
    for cert in certs:
        cert.verify_directly_issued_by(issuer)
    return len(certs) / (time.perf_counter() - start)


def issue_in_process(env: BenchEnv, count: int, prefix: str = "u") -> tuple[list[str], x509.Certificate]:
    """Issue `count` real certificates through the issuance service (not HTTP) for {prefix}0..{prefix}{count}."""
    from ca_service.context import Actor, build_context
    from ca_service.services.authority.hierarchy import active_issuer
    from ca_service.services.certificates.issuance import issue_certificate
    from config.settings import load_settings

    ctx = build_context(load_settings())
    actor = Actor(client_name="bench", role="frontend")
    pems = []
    for i, csr in enumerate(make_csrs(count)):
        view, _chain = issue_certificate(ctx, actor, f"{prefix}{i}", csr)
        pems.append(view.certificate_pem)
    return pems, active_issuer(ctx).context.certificate


def login_check_body(login_id: str, pem: str) -> str:
    return json.dumps({"login_id": login_id, "method": "certificate", "certificate_pem": pem})


PACED_CONNECTIONS = 20
PACED_RATE = 1000


def run_paced(base: str, script: Path, env: BenchEnv, *, seconds: int) -> WrkResult:
    """~1,000 checks/s offered: 20 connections, each pausing between requests for 20 ms minus the
    latency (wrk is closed-loop: the pause sets the rate only once the latency is known), found by
    two calibration runs of 2 seconds (or `seconds`, if shorter). The table prints the rate reached."""
    cycle_ms = PACED_CONNECTIONS * 1000 / PACED_RATE
    pause_ms = cycle_ms
    for _ in range(2):
        os.environ["BENCH_DELAY_MS"] = str(round(pause_ms))
        latency = run_wrk(base, script, seconds=min(2, seconds), connections=PACED_CONNECTIONS).p50_ms
        pause_ms = max(0.0, cycle_ms - latency)
    os.environ["BENCH_DELAY_MS"] = str(round(pause_ms))
    return run_wrk(base, script, seconds=seconds, connections=PACED_CONNECTIONS, server=env.processes[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--stored", default="0")
    parser.add_argument("--seconds", type=int, default=10, help="per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of /healthz and the saturation run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    rows = []
    floor = 0.0
    for stored in [int(s) for s in args.stored.split(",")]:
        env = BenchEnv(f"login_{stored}")
        try:
            env.init_ca()
            token = env.token("frontend")
            load_registry(env, args.users)
            pems, issuer = issue_in_process(env, args.users)
            floor = verify_floor([x509.load_pem_x509_certificate(p.encode()) for p in pems], issuer)
            if stored:
                issuer_id = env.issuing_ca_id()
                t = time.perf_counter()
                load_stored_certificates(env, stored, issuer_id)
                print(f"bulk-loaded {stored:,} certificates in {time.perf_counter() - t:.1f}s", flush=True)
            bodies = env.workdir / "checks.jsonl"
            bodies.write_text("".join(login_check_body(f"u{i}", p) + "\n" for i, p in enumerate(pems)))
            script = env.workdir / "check.lua"
            script.write_text(LUA)
            base = env.start_api()
            probe = requests.post(
                base + "/v1/login-checks",
                data=bodies.read_text().splitlines()[0],
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=10,
            )
            assert probe.status_code == 200 and probe.json()["allowed"] is True, probe.text
            os.environ.update(BENCH_BODIES=str(bodies), BENCH_TOKEN=token, BENCH_DELAY_MS="0")
            server = env.processes[-1]
            run = {"seconds": args.seconds, "connections": args.connections}
            for label, *cells in interleaved(
                args.rounds,
                [
                    ("/healthz, saturation", partial(healthz_run, env, base, **run)),
                    ("saturation", partial(run_wrk, base, script, server=server, **run)),
                ],
            ):
                rows.append([f"{stored:,} stored", label, *cells])
            paced = run_paced(base, script, env, seconds=args.seconds)
            rows.append([f"{stored:,} stored", "paced ~1,000/s", *paced.cells(), "-", "-"])
        finally:
            env.stop()
    print_table(
        f"Login checks over HTTP (P-256 verify floor {floor:,.0f}/s on one core)",
        ["data", "load", "checks/s", *WRK_HEADERS, "ratio to /healthz", "CPU ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
