"""Where one worker's CPU goes on each hot path: py-spy samples one sync gunicorn worker (the
production config with CA_GUNICORN_WORKERS=1) while wrk drives the path (4 connections), twice:
all samples (the worker's wall time, waits on PostgreSQL included) and only the samples holding
the GIL (its Python CPU); prints the share per frame group (inclusive) and the top frames by own
time.

    python -m bench.profile_paths [--paths ocsp,login,issuance] [--seconds 8]

Needs py-spy (`pip install py-spy`) allowed to attach (ptrace; root or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import BenchEnv, run_wrk
from bench.issuance import LUA as ISSUE_LUA
from bench.issuance import load_registry, make_csrs
from bench.login_checks import LUA as LOGIN_LUA
from bench.login_checks import issue_in_process
from bench.ocsp import LUA as OCSP_LUA
from bench.ocsp import request_paths

# Frame groups (a sample counts in every group one of its frames matches, so they overlap).
GROUPS = {
    "gunicorn (accept, parse, write)": ("gunicorn/",),
    "flask-openapi3 request validation": ("flask_openapi3/request.py", "flask_openapi3/scaffold.py"),
    "auth (token, bad-token throttle)": ("api/auth.py",),
    "bad-token throttle (Redis)": ("auth_throttle.py",),
    "JSON access log + metrics": ("api/instrumentation.py",),
    "OCSP responder service": ("services/ocsp/responder.py",),
    "OCSP signing (build + sign)": ("pki/ocsp.py:build_response",),
    "database round trips (psycopg)": ("psycopg/",),
    "SQLAlchemy": ("sqlalchemy/",),
    "login check service": ("services/registry/login_checks.py",),
    "chain verify (P-256)": ("verify_directly_issued_by",),
    "issuance service": ("services/certificates/issuance.py",),
    "CSR check": ("pki/csr.py",),
    "certificate build + sign": ("pki/profile.py",),
    "Redis": ("redis/",),
}


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def profile(env: BenchEnv, url: str, script: Path, seconds: int, out: Path, *, gil: bool) -> None:
    worker = _children(env.processes[-1].pid)[0]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    rec = subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(worker),
            "-d",
            str(seconds),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    result = run_wrk(url, script, seconds=seconds, connections=4, threads=1)
    rec.wait(60)
    print(f"  {result.requests_per_second:,.0f}/s with one worker while sampled")


def summarise(title: str, raw: Path) -> None:
    total = 0
    groups: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        for name, needles in GROUPS.items():
            if any(needle in frame for frame in frames for needle in needles):
                groups[name] += n
        leaf = frames[-1]
        own[leaf.split(" (")[0] + " (" + leaf.split(" (")[-1].split("/")[-1] if " (" in leaf else leaf] += n
    print(f"\n### {title}: {total} samples\n")
    print("| frame group (inclusive) | share |\n|---|---|")
    for name, n in groups.most_common():
        print(f"| {name} | {100 * n / total:.0f}% |")
    print("\n| top frames by own time | share |\n|---|---|")
    for name, n in own.most_common(12):
        print(f"| `{name}` | {100 * n / total:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="ocsp,login,issuance")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    env = BenchEnv("profile")
    try:
        env.init_ca()
        token = env.token("frontend")
        load_registry(env, 3000)
        pems, issuer = issue_in_process(env, 500)
        base = env.start_api({"CA_GUNICORN_WORKERS": "1", "CA_GUNICORN_THREADS": "1"})
        os.environ.update(BENCH_TOKEN=token, BENCH_THREADS="1", BENCH_DELAY_MS="0")
        work = env.workdir
        for path in args.paths.split(","):
            if path == "ocsp":
                from cryptography import x509

                serials = [format(x509.load_pem_x509_certificate(p.encode()).serial_number, "x") for p in pems]
                (work / "paths.txt").write_text("\n".join(request_paths(issuer, serials, nonce=False)) + "\n")
                os.environ["BENCH_PATHS"] = str(work / "paths.txt")
                script = work / "ocsp.lua"
                script.write_text(OCSP_LUA)
                run_wrk(base, script, seconds=2, connections=4, threads=1)  # warm the cache
            elif path == "login":
                (work / "checks.jsonl").write_text(
                    "".join(
                        json.dumps({"login_id": f"u{i}", "method": "certificate", "certificate_pem": p}) + "\n"
                        for i, p in enumerate(pems)
                    )
                )
                os.environ["BENCH_BODIES"] = str(work / "checks.jsonl")
                script = work / "login.lua"
                script.write_text(LOGIN_LUA)
            else:
                csrs = make_csrs(2500)
                (work / "bodies.tsv").write_text("".join(f"u{i + 500}\t{json.dumps({'csr': c})}\n" for i, c in enumerate(csrs)))
                os.environ["BENCH_BODIES"] = str(work / "bodies.tsv")
                script = work / "issue.lua"
                script.write_text(ISSUE_LUA)
            raw = work / f"{path}.raw"
            profile(env, base, script, args.seconds, raw, gil=False)
            summarise(f"{path}, wall time of the worker", raw)
            profile(env, base, script, args.seconds, raw, gil=True)
            summarise(f"{path}, CPU (samples holding the GIL)", raw)
    finally:
        env.stop()


if __name__ == "__main__":
    main()
