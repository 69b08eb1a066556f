"""X-Forwarded-* trusted only from the reverse proxy (deploy/nginx).

Behind nginx, the client's address and scheme arrive in X-Forwarded-For / -Proto / -Host /
-Port, which nginx writes itself (never passing on the client's own). They are believed only
when the connection comes from one of CA_TRUSTED_PROXIES (addresses or networks); from anyone
else every forwarding header is dropped, so a client cannot choose the address that the
bad-token throttle counts, nor the scheme or host the service sees. gunicorn itself trusts no
forwarding headers (config/gunicorn.conf.py): this is the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

_FORWARDING = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
    # the client certificate nginx verified for EST simplereenroll: from anyone else
    # than the proxy it would be a certificate claimed, not one proven over TLS
    "HTTP_X_SSL_CLIENT_CERT",
)


FORWARDED = "ca_service.forwarded"  # environ key: the request arrived with forwarding headers (a proxy)


class TrustedProxies:
    def __init__(self, app: Any, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
        # one proxy in front: its X-Forwarded-For holds exactly the client's address
        self.through_proxy = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1)

    def _trusted(self, peer: str | None) -> bool:
        if not peer or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ[FORWARDED] = any(name in environ for name in _FORWARDING)  # /metrics is never for a proxy's client
        if self._trusted(environ.get("REMOTE_ADDR")):
            return self.through_proxy(environ, start_response)
        for name in _FORWARDING:
            environ.pop(name, None)
        return self.app(environ, start_response)
