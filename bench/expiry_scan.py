"""The daily expiry scan (R6) over a large certificate table: notices created for the certificates
due within 40 days, walking the not_after index in pages. Certificates are bulk-loaded with COPY.

    python -m bench.expiry_scan [--certificates 100000,1000000] [--due 30000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import BenchEnv, certificate_columns, print_table

CHILD = """
import json, resource, time
from ca_service.services.notices import scan as notices
from ca_service.context import build_context
from config.settings import load_settings
ctx = build_context(load_settings())
t = time.perf_counter()
first = notices.scan(ctx)
t1 = time.perf_counter()
again = notices.scan(ctx)
print(json.dumps({"seconds": t1 - t, "rerun_seconds": time.perf_counter() - t1, "created": first.created,
                  "rerun_created": again.created, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load(env: BenchEnv, count: int, due: int) -> None:
    """`due` current certificates expire within the next 40 days, the rest between 41 and 365."""
    env.load_users("u", count, email_every=10)  # every tenth user has no email address
    days = "CASE WHEN i < %(due)s THEN 1 + 39.0 * i / %(due)s ELSE 41 + 324.0 * (i - %(due)s) / %(spread)s END"
    not_after = f"now() + make_interval(secs => 86400 * ({days})::double precision)"
    issued = f"{not_after} - interval '365 days'"
    columns = certificate_columns("scan", "u", current=True) | {
        "issued_at": issued, "not_before": issued, "not_after": not_after,
    }  # fmt: skip
    env.generate("certificates", columns, count, issuer_id=env.issuing_ca_id(), due=due, spread=(count - due) or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", default="100000,1000000")
    parser.add_argument("--due", type=int, default=30000)
    args = parser.parse_args()
    rows = []
    for n in [int(x) for x in args.certificates.split(",")]:
        due = min(args.due, n)
        env = BenchEnv(f"scan_{n}")
        try:
            env.init_ca()
            t = time.perf_counter()
            load(env, n, due)
            print(f"bulk-loaded {n:,} certificates ({due:,} due) in {time.perf_counter() - t:.1f}s", flush=True)
            out = subprocess.run([sys.executable, "-c", CHILD], env=env.env(), capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            assert r["created"] == due and r["rerun_created"] == 0, r
            rows.append(
                [
                    f"{n:,}",
                    f"{due:,}",
                    round(r["seconds"], 2),
                    f"{due / r['seconds']:,.0f}",
                    round(r["rerun_seconds"], 2),
                    round(r["peak_mb"]),
                ]
            )
        finally:
            env.stop()
    print_table(
        "Expiry scan (notices + email outbox entries), then an idempotent rerun",
        ["certificates", "due", "scan s", "notices/s", "rerun s", "peak MB"],
        rows,
    )


if __name__ == "__main__":
    main()
