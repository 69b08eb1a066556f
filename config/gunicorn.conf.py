"""gunicorn settings for `ca-service serve`, from the environment (see config/settings.py)."""

from __future__ import annotations

import os

# Imported here, in the arbiter at start-up: importing it inside the SIGCHLD handler below could
# re-enter a half-done import when workers exit together (seen under load: the arbiter exited 1).
from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from config import health_listener
from config.logging import GUNICORN_LOGCONFIG
from config.settings import load_settings

_settings = load_settings()

workers = _settings.gunicorn_workers
threads = _settings.gunicorn_threads
# sync by default: the steadiest tail latency under a steady load of login checks (docs/operations.md);
# CA_GUNICORN_THREADS > 1 behind a keep-alive front end serves more per core.
worker_class = "gthread" if threads > 1 else "sync"
timeout = _settings.gunicorn_timeout
graceful_timeout = 25  # stop within 30 s of SIGTERM
keepalive = 5
max_requests = 0
accesslog = None
errorlog = "-"
logconfig_dict = GUNICORN_LOGCONFIG
loglevel = _settings.log_level.lower()
preload_app = False
# X-Forwarded-* are believed only from CA_TRUSTED_PROXIES, by the app (ca_service/api/proxy.py)
forwarded_allow_ips = ""


class AccessLogOff(Logger):
    """The API writes its own JSON access line (ca_service/api/instrumentation.py, with request id,
    client and subjects); gunicorn's would be a duplicate and costs a worker CPU on every request."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


logger_class = AccessLogOff


def when_ready(server: object) -> None:
    """Liveness from the arbiter on CA_HEALTH_BIND, never queued behind busy workers (config/health_listener.py)."""
    if _settings.health_bind:
        health_listener.start(_settings.health_bind, server)


def child_exit(_server: object, worker: object) -> None:
    """prometheus-client multiprocess mode: forget the metrics files of a dead worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:  # never let metrics bookkeeping fail the arbiter (a nested SIGCHLD may race on the files)
            multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
        except OSError:
            pass
