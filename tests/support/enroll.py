"""The user's PC for the ca-enroll tests: a temporary HOME whose ~/.pki/nssdb ca-enroll fills,
`ca-enroll` run as the installed console script, under `faketime` when the bank's clock is moved
(the PC's clock agrees with the bank's, as a real PC's does)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tests.support.api import Api

CA_ENROLL = str(Path(sys.executable).parent / "ca-enroll")


@dataclass
class Pc:
    home: Path

    @property
    def tmp(self) -> Path:
        """This PC's temporary directory (TMPDIR): where ca-enroll's 0700 temp dirs must not outlive it."""
        return self.home / "tmp"

    @property
    def nssdb(self) -> Path:
        return self.home / ".pki" / "nssdb"

    def run(self, *args: str, stdin: str | None = None, days: float = 0, **env: str) -> subprocess.CompletedProcess[str]:
        """`ca-enroll ARGS` on this PC; `days`: its clock moved like the bank's (faketime)."""
        argv = [CA_ENROLL, *args]
        if days:
            if shutil.which("faketime") is None:
                raise RuntimeError("faketime is not installed (apt-get install faketime)")
            argv = ["faketime", "-f", f"{days:+g}d", *argv]
        self.tmp.mkdir(parents=True, exist_ok=True)
        environ = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.tmp),
            **env,
        }
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=environ, timeout=120)

    def certificates(self) -> list[x509.Certificate]:
        """What NSS holds with a private key, read with certutil itself (not through ca-enroll)."""
        if not (self.nssdb / "cert9.db").exists():
            return []
        listing = subprocess.run(["certutil", "-L", "-d", f"sql:{self.nssdb}"], capture_output=True, text=True, check=True)
        certs = []
        for line in listing.stdout.splitlines()[3:]:
            if line.rstrip().endswith("u,u,u"):
                nick = line.rstrip()[: -len("u,u,u")].strip()
                pem = subprocess.run(["certutil", "-L", "-d", f"sql:{self.nssdb}", "-n", nick, "-a"],
                                     capture_output=True, text=True, check=True).stdout  # fmt: skip
                certs.extend(x509.load_pem_x509_certificates(pem.encode()))
        return certs

    def not_after_in_certutil(self, nickname: str) -> str:
        out = subprocess.run(["certutil", "-L", "-d", f"sql:{self.nssdb}", "-n", nickname],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Not After" in line)


def no_private_key_left(*roots: Path) -> list[Path]:
    """Files under `roots` that hold an unencrypted private key, and ca-enroll temp dirs
    (`ca-enroll-*`) under them that outlived their command."""
    found = [p for root in roots for p in root.rglob("ca-enroll-*")]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix not in (".db",):
                data = path.read_bytes()
                if b"PRIVATE KEY-----" in data and b"ENCRYPTED PRIVATE KEY" not in data:
                    found.append(path)
    return found


def mint_code(api: Api, login_id: str) -> str:
    r = api.post(f"/v1/users/{login_id}/enrolment-codes", json={})
    assert r.status == 201, r
    return str(r.json["code"])
