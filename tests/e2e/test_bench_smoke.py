"""A smoke run of every benchmark with tiny sizes, so the scripts stay runnable. The figures are
not checked (no timing assertions); only that each script runs and prints a complete table:
every figure measured (no `nan`: wrk's percentiles, CPU and memory readings all arrived) and,
where requests were counted, none answered with an error. The servers run 2 gunicorn workers
instead of the production config's 5 (quicker to start on a loaded CI machine; the same code
path), and each HTTP bench is a test of its own, so the two test workers share them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgresql")


def _bench(*args: str) -> str:
    env = dict(os.environ, BENCH_DATABASE_URL=os.environ.get("DATABASE_URL", ""), CA_GUNICORN_WORKERS="2")
    argv = [sys.executable, "-m", *args]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| " in proc.stdout and "machine:" in proc.stdout, proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert rows, proc.stdout
    for row in rows:
        assert "nan" not in row, f"a figure was not measured: {row}"
        if "non-2xx" in header:
            assert row[header.index("non-2xx")] == "0", proc.stdout
    return proc.stdout


def test_crl_build_bench():
    _bench("bench.crl_build", "--entries", "500")


@pytest.mark.skipif(not ON_POSTGRES, reason="the benchmarks run against PostgreSQL")
def test_database_benches():
    _bench("bench.crl_publication", "--entries", "500")
    _bench("bench.expiry_scan", "--certificates", "1000", "--due", "200")


@pytest.mark.skipif(not ON_POSTGRES or shutil.which("wrk") is None, reason="needs PostgreSQL and wrk")
@pytest.mark.parametrize(
    "bench",
    [
        ["bench.issuance", "--requests", "2500", "--seconds", "1", "--connections", "4", "--orgs", "3"],  # a user each, 3 orgs
        ["bench.login_checks", "--users", "100", "--seconds", "1", "--connections", "4", "--rounds", "1"],
        ["bench.ocsp", "--stored", "300", "--distinct", "50", "--seconds", "1", "--connections", "4", "--rounds", "1"],
        ["bench.est", "--requests", "800", "--seconds", "1", "--connections", "4", "--rounds", "1"],  # a login ID per request
    ],
    ids=lambda argv: argv[0],
)
def test_http_benches(bench):
    _bench(*bench)
