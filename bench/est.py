"""EST enrolment beside REST issuance, in the same run, both as a ratio to `/healthz` (issue 23):

- `POST /v1/users/{id}/certificates {csr}` (the front end's bearer token, JSON, PEM CSR);
- `POST /.well-known/est/simpleenroll` (HTTP Basic `login_id:code`, base64 DER CSR; answer: base64
  PKCS#7) — the same issuance service plus the code's check and use in the issuance's transaction.

    python -m bench.est [--requests 6000] [--seconds 5] [--rounds 2] [--connections 16]

gunicorn (production config) + PostgreSQL, wrk as the separate load process, rounds interleaved
(`/healthz`, REST, EST) so the shared machine's drift hits all three alike. Every request is a
fresh P-256 CSR for a login ID of its own; each EST login ID has one code, minted through the API
before the measurement. django-ca has no EST (nor any enrolment protocol for end users): its
nearest path is its REST issuance, in bench/peers/README.md and the table below it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bench.common import WRK_HEADERS, BenchEnv, WrkResult, print_table, run_wrk
from bench.floors import HEALTHZ_LUA, interleaved
from bench.issuance import make_csrs

# one line per request: path, Authorization header, body (tab-separated); each wrk thread takes
# every BENCH_THREADS-th line, so no login ID is used twice in one run
LUA = r"""
local paths, auths, bodies = {}, {}, {}
local counter, stride, index = 0, 1, 0
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
end
function init(args)
  stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  for line in io.lines(os.getenv("BENCH_LINES")) do
    local path, auth, body = line:match("([^\t]+)\t([^\t]+)\t(.*)")
    paths[#paths + 1] = path; auths[#auths + 1] = auth; bodies[#bodies + 1] = body
  end
  index = tid + 1
end
function request()
  local i = index
  index = index + stride
  if i > #bodies then i = ((i - 1) % #bodies) + 1 end
  return wrk.format("POST", paths[i], {["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE"),
    ["Authorization"] = auths[i]}, bodies[i])
end
"""

HEADERS = ["path", "/s", *WRK_HEADERS, "ratio to /healthz", "CPU ratio"]


def mint_codes(base: str, token: str, logins: list[str]) -> dict[str, str]:
    """One code per login ID through `POST /v1/users/{id}/enrolment-codes` (4 connections)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def one(login: str) -> tuple[str, str]:
        r = session.post(f"{base}/v1/users/{login}/enrolment-codes", json={}, timeout=30)
        r.raise_for_status()
        return login, str(r.json()["code"])

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, logins))


def der_b64(pem: str) -> str:
    return base64.b64encode(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)).decode()


def runner(base: str, workdir: Path, kind: str, slices: list[list[str]], *, seconds: int, connections: int,
           server: subprocess.Popen[bytes] | None) -> Callable[[], WrkResult]:  # fmt: skip
    """A wrk run per call, each on the next slice of never-used login IDs."""
    script = workdir / f"{kind}.lua"
    script.write_text(LUA)
    content_type = "application/json" if kind == "rest" else "application/pkcs10"
    calls = iter(range(len(slices)))

    def run() -> WrkResult:
        index = next(calls)
        lines = workdir / f"{kind}-{index}.tsv"
        lines.write_text("".join(f"{line}\n" for line in slices[index]))
        os.environ.update(BENCH_LINES=str(lines), BENCH_CONTENT_TYPE=content_type, BENCH_THREADS="2")
        return run_wrk(base, script, seconds=seconds, connections=connections, threads=2, server=server)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000, help="login IDs (and CSRs) per path and round")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    n = args.requests
    print(f"generating {2 * n * args.rounds} CSRs ...", flush=True)
    csrs = make_csrs(2 * n * args.rounds)
    env = BenchEnv("est")
    try:
        env.init_ca()
        token = env.token("frontend")
        env.load_users("r", n * args.rounds)
        env.load_users("e", n * args.rounds, with_org=False)
        env.settle("users")
        base = env.start_api()
        print(f"minting {n * args.rounds} enrolment codes ...", flush=True)
        est_logins = [f"e{i}" for i in range(n * args.rounds)]
        codes = mint_codes(base, token, est_logins)
        rest, est = [], []
        for i in range(n * args.rounds):
            rest.append(f"/v1/users/r{i}/certificates\tBearer {token}\t{json.dumps({'csr': csrs[2 * i]})}")
            basic = base64.b64encode(f"e{i}:{codes[f'e{i}']}".encode()).decode()
            est.append(f"/.well-known/est/simpleenroll\tBasic {basic}\t{der_b64(csrs[2 * i + 1])}")
        rest_slices = [rest[r * n : (r + 1) * n] for r in range(args.rounds)]
        est_slices = [est[r * n : (r + 1) * n] for r in range(args.rounds)]
        server = env.processes[-1]
        healthz_script = env.workdir / "healthz.lua"
        healthz_script.write_text(HEALTHZ_LUA)

        def healthz() -> WrkResult:
            return run_wrk(
                base + "/healthz", healthz_script, seconds=args.seconds, connections=args.connections, threads=2, server=server
            )

        rows = interleaved(
            args.rounds,
            [
                ("/healthz", healthz),
                (
                    "REST issuance",
                    runner(
                        base, env.workdir, "rest", rest_slices, seconds=args.seconds, connections=args.connections, server=server
                    ),
                ),
                (
                    "EST simpleenroll",
                    runner(
                        base, env.workdir, "est", est_slices, seconds=args.seconds, connections=args.connections, server=server
                    ),
                ),
            ],
        )
    finally:
        env.stop()
    print_table(f"EST simpleenroll beside REST issuance ({args.rounds} interleaved rounds of {args.seconds} s)", HEADERS, rows)


if __name__ == "__main__":
    main()
