"""Gauges computed at scrape time (cheap reads): CRL freshness, issuing-CA lifetime, queues."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from rq import Queue, Worker
from rq.cron_scheduler_registry import get_registry_key

from ca_service.constants import QUEUE_NAMES
from ca_service.context import ServiceContext
from ca_service.services.audit import trail as audit
from ca_service.services.crl import overdue as crl_overdue
from ca_service.services.crl.publication import ca_states
from ca_service.services.events.admin import oldest_undelivered_seconds

QUEUES = QUEUE_NAMES
SCHEDULER_HEARTBEAT_SECONDS = 120  # a scheduler beats at least every outbox-sweep interval (10 s)
log = logging.getLogger("ca_service.metrics")


# The gauges below read the database and Redis: computed at most once per this many seconds per
# process, so a burst of scrapes (or a scraper in a loop) costs one set of reads.
STATE_CACHE_SECONDS = 5.0
_CACHE_KEY = "metrics-state"
_STATE_LOCK = threading.Lock()
_STATE_CACHE: dict[str, tuple[float, list[Metric]]] = {}  # one service context per process


class StateCollector(Collector):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        with _STATE_LOCK:  # concurrent scrapes wait for one database read instead of each reading
            cached = _STATE_CACHE.get(_CACHE_KEY)
            if isinstance(cached, tuple) and time.monotonic() - cached[0] < STATE_CACHE_SECONDS:
                families: list[Metric] = cached[1]
            else:
                families = list(self._database())
                _STATE_CACHE[_CACHE_KEY] = (time.monotonic(), families)
        yield from families
        yield from self._redis()

    def _database(self) -> Iterator[Metric]:
        now = self.ctx.clock.now()
        number = GaugeMetricFamily("ca_crl_number", "CRL number of the latest CRL", labels=["ca"])
        age = GaugeMetricFamily("ca_crl_age_seconds", "Seconds since the latest CRL's thisUpdate", labels=["ca"])
        entries = GaugeMetricFamily("ca_crl_entries", "Entries on the latest CRL", labels=["ca"])
        expiry = GaugeMetricFamily("ca_crl_next_update_seconds", "Seconds until the latest CRL's nextUpdate", labels=["ca"])
        validity = GaugeMetricFamily(
            "ca_crl_validity_seconds", "Configured CRL validity (nextUpdate - thisUpdate)", labels=["ca"]
        )
        ca_left = GaugeMetricFamily(
            "ca_certificate_expiry_seconds", "Seconds until the active CA certificate expires", labels=["ca"]
        )
        try:
            for state in ca_states(self.ctx):
                kind, crl = state.kind, state.crl
                ca_left.add_metric([kind], (state.ca_not_after - now).total_seconds())
                if crl is None:
                    continue
                number.add_metric([kind], crl.crl_number)
                age.add_metric([kind], (now - crl.this_update).total_seconds())
                entries.add_metric([kind], crl.entries)
                expiry.add_metric([kind], (crl.next_update - now).total_seconds())
                validity.add_metric([kind], (crl.next_update - crl.this_update).total_seconds())
        except Exception:  # the database being down must not break the scrape of everything else
            log.warning("metrics: database unavailable for the CRL and CA gauges", exc_info=True)
        yield from (number, age, entries, expiry, validity, ca_left)
        if self.ctx.settings.webhooks.enabled:
            oldest = GaugeMetricFamily(
                "ca_webhook_oldest_undelivered_seconds", "Age of the oldest lifecycle event a receiver has not got (0: none)"
            )
            try:
                oldest.add_metric([], oldest_undelivered_seconds(self.ctx))
                yield oldest
            except Exception:
                log.warning("metrics: database unavailable for the webhook gauge", exc_info=True)
        yield from self._unpublished()

    def _unpublished(self) -> Iterator[Metric]:
        """A revocation kept off the CRL (services/crl/overdue: the database only, whoever holds
        the scheduler lease and whatever Redis says)."""
        waiting = GaugeMetricFamily(
            "ca_crl_unpublished_revocation_seconds", "Seconds the oldest revocation not on the issuing CA's CRL has waited"
        )
        overdue = GaugeMetricFamily(
            "ca_crl_revocation_overdue", "1 if a revocation has not been on the CRL for CA_CRL_OVERDUE_MINUTES"
        )
        try:
            seconds = crl_overdue.oldest_unpublished_seconds(self.ctx)
        except Exception:
            log.warning("metrics: database unavailable for the unpublished-revocation gauges", exc_info=True)
            return
        waiting.add_metric([], seconds or 0.0)
        overdue.add_metric([], 1 if crl_overdue.overdue(self.ctx, seconds) else 0)
        yield from (waiting, overdue)
        refused = GaugeMetricFamily(
            "ca_audit_unauthenticated_events", "Audit events left unsealed for want of a valid authenticator (MAC)"
        )
        try:
            refused.add_metric([], len(audit.unauthenticated_unsealed(self.ctx)))
        except Exception:
            log.warning("metrics: database unavailable for the audit gauge", exc_info=True)
            return
        yield refused

    def _redis(self) -> Iterator[Metric]:
        """Queue depths and process counts (cheap Redis reads: never cached)."""
        depth = GaugeMetricFamily("ca_queue_depth", "Jobs waiting in an RQ queue", labels=["queue"])
        failed = GaugeMetricFamily("ca_queue_failed_jobs", "Jobs in an RQ queue's failed registry", labels=["queue"])
        up = GaugeMetricFamily("ca_redis_up", "1 if Redis answered this scrape")
        workers = GaugeMetricFamily("ca_rq_workers", "RQ workers registered in Redis")
        schedulers = GaugeMetricFamily(
            "ca_schedulers", f"Schedulers with a heartbeat in the last {SCHEDULER_HEARTBEAT_SECONDS} s"
        )
        ok = 0
        if self.ctx.settings.redis_url:
            try:
                conn = self.ctx.redis()
                for name in QUEUES:
                    queue = Queue(name, connection=conn)
                    depth.add_metric([name], queue.count)
                    failed.add_metric([name], queue.failed_job_registry.count)
                workers.add_metric([], Worker.count(connection=conn))
                # RQ's CronScheduler writes its heartbeat (unix time) into this sorted set each tick
                recent = conn.zcount(get_registry_key(), time.time() - SCHEDULER_HEARTBEAT_SECONDS, "+inf")
                schedulers.add_metric([], int(recent))  # type: ignore[arg-type]
                ok = 1
            except Exception:
                ok = 0
        up.add_metric([], ok)
        yield from (depth, failed, up)
        if ok:
            yield from (workers, schedulers)


def render(ctx: ServiceContext) -> bytes:
    """All metrics: summed over every process writing to PROMETHEUS_MULTIPROC_DIR when set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):  # the process's own counters
            registry.register(collector)
    registry.register(StateCollector(ctx))
    return generate_latest(registry)
