"""Running the real `ca-service` command in the test environment."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ca_service.cli.main", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ca-service {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc
