"""Finding 11 (issue 26): /metrics (~85 KB of counters) was public through the TLS listener. The
shipped nginx answers 404 for it on both public servers, and the service itself answers it only
to a direct scrape (no proxy in between) from CA_METRICS_ALLOWED (default: loopback)."""

from __future__ import annotations

import dataclasses

import requests

from ca_service.api.app import create_app
from tests.support.nginx import Nginx


def test_metrics_are_not_served_through_the_shipped_nginx(live, tmp_path):
    assert live.get("/metrics", role=None).status == 200  # Prometheus scrapes gunicorn directly
    proxy = Nginx(tmp_path / "nginx", [live.base_url.removeprefix("http://")])
    try:
        for url in (proxy.base_url, f"http://localhost:{proxy.http_port}"):
            for path in ("/metrics", "/metrics/", "/METRICS", "//metrics", "/metrics?x=1", "/%6detrics", "/./metrics"):
                r = requests.get(url + path, verify=str(proxy.cert), timeout=10, allow_redirects=False)
                assert r.status_code in (403, 404), (url, path, r.status_code)
                assert "ca_http_requests_total" not in r.text, (url, path)
        assert requests.get(proxy.base_url + "/healthz", verify=str(proxy.cert), timeout=10).status_code == 200
    finally:
        proxy.stop()


def _get(app, address: str, headers: dict[str, str] | None = None):
    return app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers or {})


def test_the_service_answers_metrics_only_to_a_direct_scrape_from_an_allowed_address(ctx):
    app = create_app(ctx)
    assert _get(app, "127.0.0.1").status_code == 200
    assert _get(app, "::1").status_code == 200
    for address in ("203.0.113.5", "10.0.9.5", "192.168.1.1"):
        r = _get(app, address)
        assert r.status_code == 404 and b"ca_http_requests_total" not in r.data, address
    # through a proxy (even one on the same host, even a trusted one): not a scrape
    assert _get(app, "127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}).status_code == 404
    behind = create_app(dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, trusted_proxies=("127.0.0.1",))))
    assert _get(behind, "127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}).status_code == 404
    assert _get(behind, "127.0.0.1").status_code == 200
    # the Prometheus server's address, configured
    scraped = create_app(dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, metrics_allowed=("10.0.9.0/24",))))
    assert _get(scraped, "10.0.9.5").status_code == 200
    assert _get(scraped, "127.0.0.1").status_code == 404
