"""The sweep's lost-work check on its own (issue 18): a revocation whose publication job Redis
lost (the queue emptied after the relay had enqueued it) is published anyway, once."""

from __future__ import annotations

import time

from ca_service.services.background import redispatch
from tests.support.cli import run_cli
from tests.support.ha import serials_on_published_crl
from tests.support.pki import make_csr
from tests.support.workers import empty_queues, run_worker_burst


def test_a_revocation_whose_publication_job_was_lost_is_published_by_the_sweep(ctx, api, test_env, tmp_path):
    """Without the scheduler's republication at start (which a Redis restart also triggers): the
    sweep alone notices the revocation missing from the CRL and enqueues a publication."""
    empty_queues(test_env.redis_url)
    api.org("acme")
    api.user("carol", "acme")
    carol = api.issue("carol", make_csr()[1]).json
    run_cli("crl", "publish", env=test_env.env())
    assert (
        api.post(f"/v1/certificates/{carol['serial']}/revocation", role="operator", json={"reason": "key_compromise"}).status
        == 200
    )
    empty_queues(test_env.redis_url)  # the publication job the relay enqueued is lost
    assert redispatch.redispatch_lost(ctx) == 0  # within the grace period: the relay's business
    time.sleep(redispatch.GRACE_SECONDS + 1)
    assert redispatch.redispatch_lost(ctx) == 1
    assert redispatch.redispatch_lost(ctx) == 0  # one waits in the queue now: not a second
    run_worker_burst(test_env)
    assert int(carol["serial"], 16) in serials_on_published_crl(api, tmp_path)
