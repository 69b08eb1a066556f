"""The daily expiry scan (R6) over a large certificate table: notices created for the certificates
due within 40 days, walking the not_after index in pages. Certificates are bulk-loaded with COPY.

    python -m bench.expiry_scan [--certificates 100000,1000000] [--due 30000]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import BenchEnv, print_table

CHILD = """
import json, resource, time
from ca_service.services import notices
from ca_service.services.context import build_context
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
    issuer_id = env.issuing_ca_id()
    now = datetime.now(UTC)
    env.load_users("u", count, email_every=10)  # every tenth user has no email address

    def rows():
        spread = (count - due) or 1
        for i in range(count):
            # `due` certificates expire within the next 40 days, the rest between 41 and 365 days
            not_after = now + (timedelta(days=1 + 39 * i / due) if i < due else timedelta(days=41 + 324 * (i - due) / spread))
            issued = not_after - timedelta(days=365)
            yield (secrets.token_hex(20).lstrip("0") or "1", issuer_id, f"u{i}", "bench", f"u{i}", secrets.token_hex(32),
                   secrets.token_hex(32), "EC P-256", issued, issued, not_after, b"\x30\x00")  # fmt: skip

    env.copy_rows(
        "certificates",
        ["serial", "issuer_id", "login_id", "org_id", "current_login_id", "spki_sha256", "fingerprint_sha256", "key_description",
         "issued_at", "not_before", "not_after", "der"],
        rows(),
    )  # fmt: skip
    env.sql("ANALYZE certificates; ANALYZE users")


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
