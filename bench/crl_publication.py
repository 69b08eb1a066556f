"""CRL publication from the database to disk (DESIGN §3), against `openssl ca -gencrl` on the
same number of entries. Revoked certificates are bulk-loaded with COPY.

    python -m bench.crl_publication [--entries 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import BenchEnv, certificate_columns, print_table
from bench.crl_build import _openssl_gencrl

REASONS = ["key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "unspecified"]

CHILD = """
import json, resource, sys, time
from ca_service.services.crl import publication as crl_publication
from ca_service.context import build_context
from config.settings import load_settings
ctx = build_context(load_settings())
t = time.perf_counter()
result = crl_publication.publish(ctx, force=True)[0]
print(json.dumps({"seconds": time.perf_counter() - t, "entries": result.entries,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load_revoked(env: BenchEnv, count: int) -> None:
    """`count` revoked certificates, revoked one second apart from a day ago, reasons in turn."""
    env.load_users("r", count)
    at = "now() - interval '1 day' - make_interval(secs => i)"
    reasons = "ARRAY[" + ", ".join(f"'{r}'" for r in REASONS) + "]"
    columns = certificate_columns("crl", "r", current=False) | {
        "issued_at": at, "not_before": at, "not_after": f"{at} + interval '365 days'",
        "revoked_at": at, "revocation_reason": f"({reasons})[mod(i, {len(REASONS)}) + 1]",
    }  # fmt: skip
    env.generate("certificates", columns, count, issuer_id=env.issuing_ca_id())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", default="10000,100000,1000000")
    args = parser.parse_args()
    rows = []
    for n in [int(x) for x in args.entries.split(",")]:
        env = BenchEnv(f"crl_{n}")
        try:
            env.init_ca()
            t = time.perf_counter()
            load_revoked(env, n)
            print(f"bulk-loaded {n:,} revoked certificates in {time.perf_counter() - t:.1f}s", flush=True)
            out = subprocess.run([sys.executable, "-c", CHILD], env=env.env(), capture_output=True, text=True, check=True)
            ours = json.loads(out.stdout.strip().splitlines()[-1])
            assert ours["entries"] == n, ours
            size = (env.workdir / "data" / "public" / "issuing.crl").stat().st_size
            ossl_s, ossl_mb = _openssl_gencrl(n)
            rows.append([f"{n:,}", round(ours["seconds"], 2), round(ours["peak_mb"]), f"{size / 1e6:.1f} MB", round(ossl_s, 2),
                         round(ossl_mb), f"{ours['seconds'] / ossl_s:.2f}"])  # fmt: skip
        finally:
            env.stop()
    print_table(
        "CRL publication: database -> signed DER -> CA_DATA_DIR/public (whole process peak RSS)",
        ["entries", "publish s", "peak MB", "CRL size", "openssl ca -gencrl s", "openssl MB", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
