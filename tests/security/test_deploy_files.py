"""The production topology of DESIGN §5 as shipped: nginx in front of gunicorn, Redis with a
password, the API not published except through the proxy, forwarding headers trusted only from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.nginx import TEMPLATES, render

ROOT = Path(__file__).resolve().parents[2]


def test_compose_puts_nginx_in_front_and_a_password_on_redis():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    proxy, api, redis = services["proxy"], services["api"], services["redis"]
    assert "ports" not in api and api["expose"] == ["8000"]
    assert proxy["environment"]["CA_API_UPSTREAM"] == "api:8000"
    assert "./deploy/nginx/templates:/etc/nginx/templates:ro" in proxy["volumes"]
    # EST: what nginx verifies client certificates against, written before nginx starts, refreshed
    assert "./deploy/nginx/est-trust-refresh.sh:/docker-entrypoint.d/40-ca-est-trust.sh:ro" in proxy["volumes"]
    assert proxy["environment"]["CA_NGINX_CLIENT_CRL"].startswith("/etc/nginx/est/") and proxy["tmpfs"] == ["/etc/nginx/est"]
    assert (ROOT / "deploy/nginx/est-trust-refresh.sh").stat().st_mode & 0o111  # the image runs only executable scripts
    assert set(proxy["ports"]) == {"443:8443", "80:8080"}
    address = proxy["networks"]["default"]["ipv4_address"]
    for name in ("api", "worker", "scheduler", "init"):
        env = services[name]["environment"]
        assert env["CA_TRUSTED_PROXIES"] == address, name
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), name
    assert "--requirepass" in " ".join(redis["command"]) and "ports" not in redis
    assert "REDIS_PASSWORD" in " ".join(redis["healthcheck"]["test"])


def test_nginx_config_is_valid_and_has_the_slow_client_limits(tmp_path):
    values = {"CA_NGINX_HTTPS_PORT": "8443", "CA_NGINX_HTTP_PORT": "8080", "CA_TLS_CERT": "/x.crt", "CA_TLS_KEY": "/x.key",
              "CA_API_UPSTREAM": "api:8000", "CA_NGINX_CLIENT_CA": "/est/ca.pem",
              "CA_NGINX_CLIENT_CRL": "/est/crl.pem"}  # fmt: skip
    text = render(TEMPLATES / "ca-service.conf.template", values)
    assert "${" not in text
    # client certificates: asked for (optional) by the TLS server, passed on from the EST location only
    assert text.count("ssl_verify_client optional;") == 1 and "ssl_crl /est/crl.pem;" in text
    assert text.count("$ssl_client_escaped_cert") == 1 and '"est:SUCCESS" $ssl_client_escaped_cert;' in text
    for directive in ("client_header_timeout", "client_body_timeout", "client_max_body_size", "proxy_request_buffering on",
                      "proxy_set_header X-Forwarded-For $remote_addr", "ssl_certificate /x.crt"):  # fmt: skip
        assert directive in text, directive
    upstream = render(TEMPLATES / "ca-service-upstream.conf.template", values)
    assert "server api:8000" in upstream and "upstream ca_service_api" in upstream
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is not installed (.ci/run installs Debian's nginx)")
    # nginx -t with the real files (certificate and resolvable upstream substituted)
    crt, key = tmp_path / "t.crt", tmp_path / "t.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=t", "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)  # fmt: skip
    crl = tmp_path / "t.crl"  # ssl_crl needs a PEM CRL of that CA
    (tmp_path / "index").touch()
    subprocess.run(["openssl", "ca", "-gencrl", "-keyfile", str(key), "-cert", str(crt), "-out", str(crl),
                    "-config", "/dev/stdin"],
                   input=f"[ca]\ndefault_ca=d\n[d]\ndatabase={tmp_path}/index\ndefault_md=sha256\ndefault_crl_days=1\n",
                   text=True, check=True, capture_output=True)  # fmt: skip
    values.update(CA_TLS_CERT=str(crt), CA_TLS_KEY=str(key), CA_API_UPSTREAM="127.0.0.1:9", CA_NGINX_HTTPS_PORT="18443",
                  CA_NGINX_HTTP_PORT="18080", CA_NGINX_CLIENT_CA=str(crt), CA_NGINX_CLIENT_CRL=str(crl))  # fmt: skip
    (tmp_path / "ca.conf").write_text(render(TEMPLATES / "ca-service-upstream.conf.template", values)
                                      + render(TEMPLATES / "ca-service.conf.template", values))  # fmt: skip
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}} http {{ include {tmp_path}/ca.conf; }}\n"
    )
    check = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
