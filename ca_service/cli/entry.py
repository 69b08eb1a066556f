"""The `ca-service` console script. `ca-service healthcheck` runs without loading the CLI (whose
imports take seconds on a loaded machine, longer than a container healthcheck's timeout)."""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["healthcheck"] and len(args) <= 2 and not set(args) & {"-h", "--help"}:
        from ca_service.cli.health import run

        sys.exit(run(args[1] if len(args) == 2 else None))
    from ca_service.cli.main import cli

    cli()
