"""SoftHSM2 tokens for tests: a token directory of its own and a config file pointing at it, so
that no test touches /var/lib/softhsm or another test's token."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


def softhsm_module() -> str | None:
    for path in SOFTHSM_MODULES:
        if os.path.exists(path):
            return path
    return None


def softhsm_available() -> bool:
    return softhsm_module() is not None and shutil.which("softhsm2-util") is not None


@dataclass(frozen=True)
class SoftHsm:
    directory: Path  # holds softhsm2.conf, tokens/, pin
    label: str

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"

    @property
    def tokens(self) -> Path:
        return self.directory / "tokens"

    @property
    def pin_file(self) -> Path:
        return self.directory / f"{self.label}.pin"

    def env(self) -> dict[str, str]:
        """The settings that make ca-service use this token (CA_KEY_BACKEND=pkcs11)."""
        module = softhsm_module()
        assert module is not None
        return {
            "CA_KEY_BACKEND": "pkcs11",
            "CA_PKCS11_MODULE": module,
            "CA_PKCS11_TOKEN_LABEL": self.label,
            "CA_PKCS11_PIN_FILE": str(self.pin_file),
            "SOFTHSM2_CONF": str(self.conf),
        }


def create_softhsm(directory: Path, label: str = "ca-test") -> SoftHsm:
    """A fresh SoftHSM2 token `label` in `directory` (created), with a random user PIN in a file."""
    hsm = SoftHsm(directory, label)
    hsm.tokens.mkdir(parents=True, exist_ok=True)
    if not hsm.conf.exists():
        hsm.conf.write_text(
            f"directories.tokendir = {hsm.tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
    pin = secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", secrets.token_hex(8), "--pin", pin],
        env={**os.environ, "SOFTHSM2_CONF": str(hsm.conf)},
        check=True,
        capture_output=True,
    )
    fd = os.open(hsm.pin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pin)
    return hsm
