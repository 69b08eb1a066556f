"""CRL publication from the database to disk (DESIGN §3), against `openssl ca -gencrl` on the
same number of entries. Revoked certificates are bulk-loaded with COPY.

    python -m bench.crl_publication [--entries 10000,100000,1000000]
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
from bench.crl_build import _openssl_gencrl

REASONS = ["key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "unspecified"]

CHILD = """
import json, resource, sys, time
from ca_service.services import crl_publication
from ca_service.services.context import build_context
from config.settings import load_settings
ctx = build_context(load_settings())
t = time.perf_counter()
result = crl_publication.publish(ctx, force=True)[0]
print(json.dumps({"seconds": time.perf_counter() - t, "entries": result.entries,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load_revoked(env: BenchEnv, count: int) -> None:
    issuer_id = env.issuing_ca_id()
    now = datetime.now(UTC)
    env.load_users("r", count)

    def rows():
        for i in range(count):
            at = now - timedelta(days=1, seconds=i)
            serial = secrets.token_hex(20).lstrip("0") or "1"
            yield (
                serial, issuer_id, f"r{i}", "bench", secrets.token_hex(32), secrets.token_hex(32),
                "EC P-256", at, at, at + timedelta(days=365), b"\x30\x00", at, REASONS[i % 5],
            )  # fmt: skip

    env.copy_rows(
        "certificates",
        ["serial", "issuer_id", "login_id", "org_id", "spki_sha256", "fingerprint_sha256", "key_description",
         "issued_at", "not_before", "not_after", "der", "revoked_at", "revocation_reason"],
        rows(),
    )  # fmt: skip
    env.sql("ANALYZE certificates")


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
