"""Finding 4 (issue 13): slow clients take the API down. Directly on gunicorn a handful of
connections that send one header line every few seconds stall every sync worker; behind the
shipped nginx config (deploy/nginx) 50 of them leave /healthz answering in milliseconds."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import time

import pytest
import requests
from redis import Redis

from tests.support.nginx import Nginx

pytestmark = pytest.mark.xdist_group("slow-clients")  # timing-sensitive: not beside its own twin


class SlowClients:
    """`count` connections that each send a request header one line every `interval` seconds."""

    def __init__(self, host: str, port: int, count: int, *, interval: float = 2.0, tls: bool = False) -> None:
        self.stop_event = threading.Event()
        self.sockets: list[socket.socket] = []
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        for _ in range(count):
            raw = socket.create_connection((host, port), timeout=10)
            sock = context.wrap_socket(raw, server_hostname="localhost") if tls else raw
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            self.sockets.append(sock)
        self.thread = threading.Thread(target=self._trickle, args=(interval,), daemon=True)
        self.thread.start()

    def _trickle(self, interval: float) -> None:
        n = 0
        while not self.stop_event.wait(interval):
            n += 1
            for sock in self.sockets:
                try:
                    sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    pass

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def _healthz_times(url: str, count: int, **kw) -> list[float]:
    times = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            r = session.get(url + "/healthz", timeout=5, **kw)
            times.append(time.perf_counter() - started)
            assert r.status_code == 200
    return sorted(times)


def test_slow_clients_stall_gunicorn_directly_but_not_behind_nginx(ctx, live_processes, tmp_path):
    if shutil.which("nginx") is None and not __import__("os").path.exists("/usr/sbin/nginx"):
        pytest.fail("nginx is not installed (.ci/run installs Debian's nginx)")
    workers = 2
    base = live_processes.start_api(workers=workers, name="api-slow", CA_GUNICORN_TIMEOUT="30", CA_TRUSTED_PROXIES="127.0.0.1")
    port = int(base.rsplit(":", 1)[1])
    # before: directly on gunicorn, a few slow clients hold every sync worker
    slow = SlowClients("127.0.0.1", port, workers + 2)
    try:
        time.sleep(0.5)
        started = time.perf_counter()
        with pytest.raises(requests.RequestException):
            requests.get(base + "/healthz", timeout=3)
        assert time.perf_counter() - started >= 2.5
    finally:
        slow.close()
    deadline = time.monotonic() + 40  # the stalled workers finish (or are replaced) once the clients leave
    while True:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "gunicorn did not recover after the slow clients left"
    # after: the same gunicorn behind nginx; 50 slow TLS clients hold connections to nginx
    proxy = Nginx(tmp_path / "nginx", [base.removeprefix("http://")])
    try:
        _healthz_times(proxy.base_url, 5, verify=str(proxy.cert))  # warm up the TLS session and upstream pool
        slow = SlowClients("127.0.0.1", proxy.https_port, 50, tls=True)
        try:
            time.sleep(1)
            times = _healthz_times(proxy.base_url, 200, verify=str(proxy.cert))
            assert slow.thread.is_alive()
        finally:
            slow.close()
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"/healthz through nginx with 50 slow clients: p50 {times[len(times) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        assert p99 < 0.100, f"p99 {p99 * 1000:.1f} ms"
    finally:
        proxy.stop()
        live_processes.processes["api-slow"].stop()


def test_the_proxy_limits_sizes_and_forwards_only_what_it_sets(ctx, test_env, live_processes, tmp_path):
    base = live_processes.start_api(workers=1, name="api-proxy-limits", CA_TRUSTED_PROXIES="127.0.0.1")
    proxy = Nginx(tmp_path / "nginx", [base.removeprefix("http://")])
    try:
        verify = str(proxy.cert)
        big = requests.put(proxy.base_url + "/v1/users/x", data=b"{" + b" " * 70_000 + b"}", verify=verify, timeout=10,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert big.status_code == 413
        long_header = requests.get(proxy.base_url + "/healthz", headers={"X-Long": "a" * 9000}, verify=verify, timeout=10)
        assert long_header.status_code in (400, 431, 494)
        plain = f"http://127.0.0.1:{proxy.http_port}"
        assert requests.get(plain + "/healthz", timeout=5).status_code == 200
        assert requests.get(plain + "/ca/issuing.crt", timeout=5).status_code == 200
        assert requests.get(plain + "/v1/users/x", timeout=5).status_code == 403  # the API only over TLS
        # the address the service counts is the one nginx saw, not the one the client claims
        conn = Redis.from_url(test_env.redis_url)
        spoofed = {"Authorization": "Bearer cas_bad", "X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"}
        assert requests.get(proxy.base_url + "/v1/users/x", headers=spoofed, verify=verify, timeout=10).status_code == 401
        keys = {k.decode() for k in conn.scan_iter("ca:auth-failures:*")}
        conn.delete(*keys)
        assert keys == {"ca:auth-failures:127.0.0.1"}, keys
    finally:
        proxy.stop()
        live_processes.processes["api-proxy-limits"].stop()
