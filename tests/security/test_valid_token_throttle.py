"""Finding 6 (issue 26): the bad-token throttle locked the front end out. 21 bad tokens from the
front end's own address (a shared NAT, a bug in the front end) and its valid login checks got 429
for the whole window (300 s). A request with a valid token is never refused by the throttle; bad
tokens from that address still get 429. (Through real gunicorn servers and a second node:
tests/security/test_abuse_limits.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from ca_service.api.app import create_app
from ca_service.services.access import blocks as auth_blocks

NAT = "192.0.2.66"


@pytest.fixture
def front_end(ctx, tokens) -> Iterator:
    client = create_app(ctx).test_client()
    yield client
    conn = Redis.from_url(ctx.settings.redis_url)
    conn.delete(auth_blocks.KEY.format(NAT))
    conn.zrem(auth_blocks.INDEX, NAT)
    conn.close()
    ctx.local(auth_blocks.AuthBlockState).blocked.pop(NAT, None)


def _call(client, token: str):
    return client.post(
        "/v1/login-checks",
        json={"login_id": "alice", "method": "id_password"},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": NAT},
    )


def test_a_valid_token_is_never_refused_by_the_bad_token_throttle(ctx, api, tokens, front_end):
    api.org("acme", login_method="id_password")
    api.user("alice", "acme")
    limit = ctx.settings.auth_failure_limit
    statuses = [_call(front_end, f"cas_bug{i}").status_code for i in range(limit + 1)]
    assert statuses[:limit] == [401] * limit and statuses[limit] == 429, statuses
    for _ in range(3):  # the front end's own valid login checks from the same address go on
        good = _call(front_end, tokens["frontend"])
        assert good.status_code == 200 and good.get_json()["allowed"] is True, good.get_data()
    # bad tokens from that address are still refused for the window
    bad = _call(front_end, "cas_bug-again")
    assert bad.status_code == 429 and bad.get_json()["code"] == "too-many-authentication-failures"
    assert int(bad.headers["Retry-After"]) > 0
