"""Start-up failures of the long-running commands are one line on stderr, never a traceback
(an operator reads them in `docker logs`)."""

from __future__ import annotations

from tests.support.cli import run_cli
from tests.support.live import free_port


def test_serve_with_an_unreachable_database_dies_with_one_line(test_env):
    port = free_port()  # nothing listens there
    env = test_env.env(DATABASE_URL=f"postgresql+psycopg://ca:secret-pw@127.0.0.1:{port}/ca")
    out = run_cli("serve", "--bind", f"127.0.0.1:{free_port()}", env=env, check=False)
    assert out.returncode == 1, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("ca-service: error: database unavailable: ") and f"port {port} failed" in lines[0], lines
    assert "secret-pw" not in out.stderr
