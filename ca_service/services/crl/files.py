"""The public CRL files (CA_DATA_DIR/public/<name>.crl) a static web server serves.

A CRL file is written only after the CRL's transaction has committed: a CRL number on the web is
always one the database holds, so it can never be published again with other contents (a
publication whose commit fails leaves no file behind, and the next one uses its number, once).
Committed publications may reach this point out of order; under an exclusive lock on the
directory, a CRL is written only while it is still its CA's latest in the database, so a file is
never replaced by an older CRL (the database, not the file, says which is newest: after a
restore from backup the numbers on disk may be ahead of it). Each write is temp file + fsync +
rename, so a reader (or a crash) never sees a half-written CRL. A crash between commit and
write leaves the previous file until the next publication (the scheduler republishes
periodically; GET /v1/crl serves from the database meanwhile).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ca_service.context import ServiceContext
from ca_service.store import crls
from ca_service.store.db import reading


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    # Beside the directory, not in it: the web server serves only CRLs from there.
    fd = os.open(directory.parent / f".{directory.name}.crl-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace(directory: Path, name: str, der: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(der)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / f"{name}.crl")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_committed(ctx: ServiceContext, ca_id: int, crl_number: int, names: list[str], der: bytes) -> list[str]:
    """Write the committed CRL `der` (number `crl_number` of CA `ca_id`) as <name>.crl for each
    name, unless a newer CRL of that CA has been committed since; returns the names written."""
    directory = ctx.settings.public_dir
    directory.mkdir(parents=True, exist_ok=True)
    with _directory_lock(directory):
        with reading(ctx.sessions) as session:
            latest = crls.latest(session, ca_id)
        if latest is None or latest.crl_number != crl_number:
            return []  # a newer CRL was committed: its publisher writes (or has written) the files
        for name in names:
            _replace(directory, name, der)
    return list(names)
