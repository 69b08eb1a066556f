"""In-process CRL construction against `openssl ca -gencrl` on the same entries (the limit).

    python -m bench.crl_build [--entries 100000,1000000]

Only the pki layer: build + sign + DER of a CRL with N entries; prints time and peak memory of
a fresh child process per size (so one size's heap does not hide the next one's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import print_table

REASONS = ["key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "unspecified"]


def _child(entries: int, mode: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ca_service.pki.crl import RevokedEntry, as_text_entries, build_crl, build_large_crl
    from ca_service.pki.hierarchy import build_root, ca_name
    from ca_service.pki.signer import KeySigner

    key = KeySigner("bench", ec.generate_private_key(ec.SECP256R1()))
    now = datetime.now(UTC).replace(microsecond=0)
    ca = build_root(key=key, subject=ca_name("Bench", "Bench CA"), serial=1, not_before=now, not_after=now + timedelta(days=365))
    rows = [RevokedEntry(int.from_bytes(secrets.token_bytes(19), "big") | 1, now, REASONS[i % 5]) for i in range(entries)]
    dates = {"this_update": now, "next_update": now + timedelta(days=1)}
    if mode == "builder":  # cryptography's CertificateRevocationListBuilder, the whole list to its constructor
        start = time.perf_counter()
        der = build_crl(issuer_cert=ca, issuer_key=key, entries=rows, crl_number=1, **dates)
    else:  # build_large_crl, fed (serial hex, date, reason) text rows as the database's COPY gives them
        text_rows = as_text_entries(rows)
        start = time.perf_counter()
        der = build_large_crl(issuer_cert=ca, issuer_key=key, entries=text_rows, crl_number=1, **dates)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "bytes": len(der)}))


def _openssl_gencrl(entries: int) -> tuple[float, float]:
    """`openssl ca -gencrl` with an index.txt of `entries` revoked certificates."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        subprocess.run(
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", d / "ca.key"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "openssl",
                "req",
                "-new",
                "-x509",
                "-key",
                d / "ca.key",
                "-subj",
                "/CN=Bench CA",
                "-days",
                "365",
                "-out",
                d / "ca.pem",
            ],
            check=True,
            capture_output=True,
        )
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M%SZ")
        with open(d / "index.txt", "w") as fh:
            for i in range(entries):
                fh.write(
                    f"R\t301231235959Z\t{stamp},keyCompromise\t{secrets.token_hex(19).upper()}{i % 100:02d}\tunknown\t/CN=u{i}\n"
                )
        (d / "crlnumber").write_text("01\n")
        (d / "ca.cnf").write_text(
            f"[ca]\ndefault_ca=b\n[b]\ndatabase={d}/index.txt\ncrlnumber={d}/crlnumber\ndefault_md=sha256\n"
            f"default_crl_hours=24\ncertificate={d}/ca.pem\nprivate_key={d}/ca.key\n"
        )
        # os.wait4 gives the rusage of exactly this child (RUSAGE_CHILDREN would include earlier runs)
        start = time.perf_counter()
        argv = ["openssl", "ca", "-config", str(d / "ca.cnf"), "-gencrl", "-out", str(d / "crl.pem")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError("openssl ca -gencrl failed")
        seconds, peak = time.perf_counter() - start, usage.ru_maxrss / 1024
        return seconds, peak


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", default="100000,1000000")
    args = parser.parse_args()
    rows = []
    for n in [int(x) for x in args.entries.split(",")]:
        result = {}
        for mode in ("builder", "fast"):
            argv = [sys.executable, "-m", "bench.crl_build", "--child", str(n), mode]
            out = subprocess.run(argv, capture_output=True, text=True, check=True, env=dict(os.environ))
            result[mode] = json.loads(out.stdout)
        ossl_s, ossl_mb = _openssl_gencrl(n)
        b, f = result["builder"], result["fast"]
        rows.append(
            [f"{n:,}", round(b["seconds"], 2), round(b["peak_mb"]), round(f["seconds"], 2), round(f["peak_mb"]),
             round(ossl_s, 2), round(ossl_mb), f"{f['seconds'] / ossl_s:.2f}"]
        )  # fmt: skip
    print_table(
        "CRL build in process: cryptography builder vs build_large_crl vs openssl ca -gencrl (peak MB includes the input rows)",
        ["entries", "builder s", "builder MB", "large s", "large MB", "openssl s", "openssl MB", "large/openssl"],
        rows,
    )


if __name__ == "__main__":
    main()
