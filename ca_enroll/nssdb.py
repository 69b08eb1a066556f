"""The NSS database that Chrome/Chromium use on Linux (`~/.pki/nssdb`), through Debian's
libnss3-tools (`certutil`, `pk12util`). A certificate and its key go in as one PKCS#12 that is
encrypted with a random password, lives in a 0700 temporary directory and is removed in a
`finally` (DESIGN §4c: no private key unencrypted on disk outside the NSS database).

NSS gives every certificate of one subject the same nickname, and `certutil -D -n` then deletes
whichever it finds "best", so a login ID's certificates are replaced as a whole: its old
certificates and keys are removed, then the new one is imported (one valid certificate per login
ID: whatever the server just replaced can no longer log in anyway)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ca_enroll import keys
from ca_enroll.checks import login_id_of
from ca_enroll.errors import EnrollError, Exit

NICKNAME_SUFFIX = " (ca-enroll)"  # no colon: NSS reads "x:" as a token name
_LIST_LINE = re.compile(r"^(?P<nick>.*\S)\s+(?P<trust>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")
_KEY_LINE = re.compile(r"^<\s*\d+>\s+\S+\s+(?P<id>[0-9a-f]+)\s+(?P<nick>.*)$")


def default_dir() -> Path:
    return Path.home() / ".pki" / "nssdb"


@dataclass(frozen=True)
class Installed:
    nickname: str
    certificate: x509.Certificate

    @property
    def login_id(self) -> str | None:
        return login_id_of(self.certificate)


class NssDb:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        if shutil.which("certutil") is None or shutil.which("pk12util") is None:
            raise EnrollError(Exit.STORE_FAILED, "nss-tools-missing")

    @property
    def spec(self) -> str:
        return f"sql:{self.dir}"

    def ensure(self) -> None:
        """Create the database (empty password, as Chromium makes it) if there is none."""
        if (self.dir / "cert9.db").exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._run("certutil", "-N", "-d", self.spec, "--empty-password")

    # -- reading ------------------------------------------------------------------------------
    def user_certificates(self) -> list[Installed]:
        """Every certificate that has its private key here (trust flags `u`)."""
        if not (self.dir / "cert9.db").exists():
            return []
        found: list[Installed] = []
        for nick in sorted({n for n, trust in self._listing() if "u" in trust}):
            for cert in self._certs_named(nick):
                found.append(Installed(nick, cert))
        return found

    def of_login_id(self, login_id: str) -> list[Installed]:
        return [i for i in self.user_certificates() if i.login_id == login_id]

    def _listing(self) -> list[tuple[str, str]]:
        out = self._run("certutil", "-L", "-d", self.spec).stdout
        rows = []
        for line in out.splitlines()[3:]:
            m = _LIST_LINE.match(line)
            if m:
                rows.append((m["nick"], m["trust"]))
        return rows

    def _certs_named(self, nick: str) -> list[x509.Certificate]:
        r = self._run("certutil", "-L", "-d", self.spec, "-n", nick, "-a", check=False)
        return x509.load_pem_x509_certificates(r.stdout.encode()) if r.returncode == 0 and "BEGIN" in r.stdout else []

    def _key_ids(self, nick: str) -> list[str]:
        r = self._run("certutil", "-K", "-d", self.spec, check=False)
        return [m["id"] for m in map(_KEY_LINE.match, r.stdout.splitlines()) if m and m["nick"].strip() == nick]

    # -- writing ------------------------------------------------------------------------------
    def install(self, key: PrivateKeyTypes, cert: x509.Certificate, chain: list[x509.Certificate]) -> str:
        """Replace the login ID's certificates here with `cert` (+ its key and CA chain)."""
        login_id = login_id_of(cert) or "?"
        self.ensure()
        self.remove_login_id(login_id)
        nickname = login_id + NICKNAME_SUFFIX
        with keys.private_dir() as tmp:
            password = secrets.token_urlsafe(24)
            p12 = tmp / "import.p12"
            p12.write_bytes(keys.pkcs12_bytes(nickname, key, cert, chain, password))
            pwfile = tmp / "pw"
            pwfile.write_text(password)
            self._run("pk12util", "-i", str(p12), "-d", self.spec, "-w", str(pwfile), "-k", "/dev/null")
        return nickname

    def remove_login_id(self, login_id: str) -> list[x509.Certificate]:
        """Remove every certificate (and its key) of this login ID; the removed ones are returned."""
        removed: list[x509.Certificate] = []
        for nick in sorted({i.nickname for i in self.of_login_id(login_id)}):
            certs = self._certs_named(nick)
            for key_id in self._key_ids(nick):
                self._run("certutil", "-F", "-d", self.spec, "-k", key_id, check=False)
            for _ in range(len(certs) + 2):
                if self._run("certutil", "-D", "-d", self.spec, "-n", nick, check=False).returncode != 0:
                    break
            removed.extend(certs)
        return removed

    @contextmanager
    def exported(self, installed: Installed) -> Iterator[tuple[PrivateKeyTypes, x509.Certificate]]:
        """The key of an installed certificate, read through an encrypted temporary PKCS#12."""
        with keys.private_dir() as tmp:
            password = secrets.token_urlsafe(24)
            pwfile = tmp / "pw"
            pwfile.write_text(password)
            p12 = tmp / "export.p12"
            self._run("pk12util", "-o", str(p12), "-n", installed.nickname, "-d", self.spec, "-w", str(pwfile), "-k", "/dev/null")
            with warnings.catch_warnings():  # pk12util writes BER, which cryptography reads with a warning
                warnings.simplefilter("ignore", UserWarning)
                key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode())
            p12.unlink()
        if key is None or cert is None or cert != installed.certificate:
            raise EnrollError(Exit.STORE_FAILED, "store-failed", detail=f"pk12util exported no key for {installed.nickname}")
        yield key, cert

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise EnrollError(Exit.STORE_FAILED, "store-failed", detail=f"{argv[0]}: {(r.stderr or r.stdout).strip()[:300]}")
        return r
