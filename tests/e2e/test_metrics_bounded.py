"""/metrics cannot be inflated by clients: label values are bounded, the exposition after 1,000
requests with invented HTTP methods (and unmatched paths) has the same size, the collectors that
read the database are cached for a few seconds, and the Content-Type names its charset once."""

from __future__ import annotations

import time

import requests

from ca_service.metrics_collectors import STATE_CACHE_SECONDS


def _method(i: int) -> str:
    """An invented method gunicorn lets through (upper-case letters, 3 or more)."""
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += chr(ord("A") + r)
        if not i:
            return "XY" + letters


def _scrape(base_url: str) -> requests.Response:
    return requests.get(base_url + "/metrics", timeout=30)


def test_bogus_methods_and_paths_do_not_grow_the_exposition(live):
    base = live.base_url
    session = requests.Session()
    # one round of each kind first, so every bounded series exists before the measurement
    for method, path in ((_method(0), "/v1/users/x"), ("GET", "/nothing-0"), (_method(0), "/nothing-0")):
        session.request(method, base + path, timeout=30)
    _scrape(base)  # and the scrape's own series
    time.sleep(STATE_CACHE_SECONDS + 0.5)
    before = _scrape(base).text
    for i in range(1, 1001):
        method = _method(i)
        path = f"/v1/users/u{i}" if i % 2 else f"/nothing-{i}"
        r = session.request(method, base + path, timeout=30)
        assert r.status_code in (404, 405), r.status_code
    time.sleep(STATE_CACHE_SECONDS + 0.5)
    after = _scrape(base).text
    assert _method(999) not in after and "nothing-1000" not in after
    assert len(after.splitlines()) == len(before.splitlines()), (len(before.splitlines()), len(after.splitlines()))
    # the same size give or take the digits of the counters that moved
    assert abs(len(after) - len(before)) < 200, (len(before), len(after))
    assert 'method="other"' in after and 'route="unmatched"' in after


def test_content_type_names_charset_once(live):
    ctype = _scrape(live.base_url).headers["Content-Type"]
    assert ctype.startswith("text/plain") and ctype.count("charset") == 1, ctype


def test_database_gauges_are_cached_for_a_few_seconds(ctx):
    """Two scrapes within STATE_CACHE_SECONDS read the database once: a CRL published in between
    shows on the first scrape after the cache expires, not before."""
    from ca_service.metrics_collectors import render
    from workers.jobs import publish_crl_job

    def crl_number() -> str:
        lines = [ln for ln in render(ctx).decode().splitlines() if ln.startswith('ca_crl_number{ca="issuing"}')]
        return lines[0].rsplit(" ", 1)[1] if lines else "none"

    time.sleep(STATE_CACHE_SECONDS + 0.1)  # whatever an earlier test cached has expired
    first = crl_number()
    started = time.monotonic()
    publish_crl_job(force=True)
    second = crl_number()
    if time.monotonic() - started < STATE_CACHE_SECONDS:  # (a very slow machine cannot show the cache)
        assert second == first
    time.sleep(STATE_CACHE_SECONDS + 0.1)
    assert crl_number() != first
