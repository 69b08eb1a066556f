"""The worker's allowlist (ca_service/queueing.JOB_FUNCTIONS) names every job the project really
enqueues, under the name RQ gives it, or the worker would refuse the project's own jobs."""

from __future__ import annotations

import importlib

import pytest
from redis import Redis
from rq.job import Job

from ca_service import queueing
from ca_service.outbox import records
from ca_service.services.background import jobs as tasks
from ca_service.services.events.recording import WEBHOOK_DELIVER
from workers import jobs


def _rq_name(func: object) -> str:
    """The name RQ stores for a job enqueued as this function object (no Redis round trip)."""
    return Job.create(func, connection=Redis()).func_name


def test_every_enqueued_job_function_is_allowed() -> None:
    enqueued = [
        tasks.publish_crl_job,  # outbox routes (revocations, the API's and the console's requests)
        tasks.send_notice_email_job,
        tasks.deliver_webhooks_job,  # outbox routes, services/events/delivery.py (kick, retries)
        jobs.sweep_job,  # workers/scheduler.py
        jobs.republish_crl_job,
        jobs.expiry_scan_job,
        tasks.rotate_ocsp_responders_job,
        tasks.audit_checkpoint_job,
    ]
    for kind in (records.CRL_PUBLISH, records.NOTICE_EMAIL, WEBHOOK_DELIVER):
        enqueued.append(tasks.ROUTES[kind].job)
    for func in enqueued:
        assert _rq_name(func) in queueing.JOB_FUNCTIONS, _rq_name(func)


def test_every_allowed_name_resolves_to_a_function() -> None:
    for name in queueing.JOB_FUNCTIONS:
        module, attr = name.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attr)), name


def test_a_foreign_name_is_not_allowed() -> None:
    assert "subprocess.getoutput" not in queueing.JOB_FUNCTIONS


def test_a_job_queued_under_its_old_name_runs_the_renamed_function() -> None:
    # jobs queued before services/ became packages (issue 22) carry these names for one release
    for name, func in [
        ("ca_service.services.tasks.sweep_job", tasks.sweep_job),  # regroup:keep
        ("ca_service.services.tasks.publish_crl_job", tasks.publish_crl_job),  # regroup:keep
        ("ca_service.services.tasks.send_notice_email_job", tasks.send_notice_email_job),  # regroup:keep
        # the scheduler's periodic jobs, before every job function was gathered in one module
        ("workers.ocsp_jobs.rotate_ocsp_responders_job", tasks.rotate_ocsp_responders_job),
        ("workers.audit_jobs.audit_checkpoint_job", tasks.audit_checkpoint_job),
    ]:
        assert queueing.AllowlistJob.create(name, connection=Redis()).func is func, name
    assert set(queueing.RENAMED_JOBS.values()) <= queueing.JOB_FUNCTIONS


def test_the_old_module_names_nothing_but_its_jobs() -> None:
    for name in (
        "ca_service.services.tasks.audit",
        "ca_service.services.tasks.log",
        "workers.audit_jobs.audit_checkpoints",
    ):  # regroup:keep
        with pytest.raises(queueing.ForeignJobRefused):
            _ = queueing.AllowlistJob.create(name, connection=Redis()).func
