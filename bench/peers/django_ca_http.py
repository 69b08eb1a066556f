"""The HTTP side of bench/peers/django_ca.py: wrk scripts for django-ca's sign API (the POST
alone, and the whole order flow), OCSP request paths with SHA-256 CertIDs for either server, the
check that refuses to time wrong OCSP answers, and a small wrk runner over bench.common.run_wrk."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.common import WrkResult, run_wrk
from bench.ocsp import LUA as OCSP_LUA
from ca_service.pki.ocsp import issuer_hashes

# The peer's scripts read their lines (bodies or paths) with bench/ocsp.py's script (BENCH_PATHS:
# its per-thread stride over the lines); next_line() is that stride, only what each request is changes.
_NEXT_LINE_LUA = (
    OCSP_LUA
    + r"""
function next_line()
  local i = ((index - 1) % #paths) + 1
  index = index + stride
  return paths[i]
end
"""
)

# django-ca's sign endpoint: one POST per request, each with its own CSR and subject (a body a line).
PEER_SIGN_LUA = (
    _NEXT_LINE_LUA
    + r"""
function next_post()
  return wrk.format("POST", os.getenv("BENCH_API") .. "sign/", {["Content-Type"] = "application/json",
    ["Authorization"] = os.getenv("BENCH_AUTH")}, next_line())
end
function request()
  return next_post()
end
"""
)

# The whole flow: POST the order, GET the order (issued: it names the certificate), GET the
# certificate. The follow-up GETs of a thread's connections wait in one queue, served first.
PEER_FLOW_LUA = (
    PEER_SIGN_LUA
    + r"""
local queue = {}
local function get(path)
  return wrk.format("GET", os.getenv("BENCH_API") .. path, {["Authorization"] = os.getenv("BENCH_AUTH")})
end
function request()
  if #queue > 0 then return table.remove(queue, 1) end
  return next_post()
end
function response(status, headers, body)
  if status ~= 200 or body:find('"certificate":', 1, true) then return end
  local slug = body:match('"slug":%s*"([^"]+)"')
  local st = body:match('"status":%s*"([a-z]+)"')
  local serial = body:match('"serial":%s*"([0-9A-F]+)"')
  if st == "issued" and serial then queue[#queue + 1] = get("certs/" .. serial .. "/")
  elseif st == "pending" and slug then queue[#queue + 1] = get("orders/" .. slug .. "/") end
end
"""
)


# django-ca has no login check. Its nearest equivalent is the REST API's certificate lookup (the
# certificate with its revocation status), authenticated with HTTP Basic like its sign endpoint:
# GET certs/{serial}/ for stored serials (BENCH_PATHS, one path a line).
PEER_CERT_LUA = (
    _NEXT_LINE_LUA
    + r"""
function request()
  return wrk.format("GET", next_line(), {["Authorization"] = os.getenv("BENCH_AUTH")})
end
"""
)


def ocsp_paths(prefix: str, issuer: x509.Certificate, serials: list[tuple[int, bool]], *, nonce: bool) -> list[str]:
    """GET paths with SHA-256 CertIDs (django-ca's pre-generated responses answer only those)."""
    out = []
    for serial, _revoked in serials:
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            *issuer_hashes(issuer, hashes.SHA256()), serial, hashes.SHA256()
        )
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        der = builder.build().public_bytes(serialization.Encoding.DER)
        out.append(prefix + quote(base64.b64encode(der).decode(), safe=""))
    return out


def check_ocsp(base: str, paths: list[str], serials: list[tuple[int, bool]]) -> None:
    """Refuse to time errors: the first answers must be signed, for the asked serial, SHA-256, and
    say revoked exactly for the revoked certificates."""
    for path, (serial, revoked) in list(zip(paths, serials, strict=True))[:20]:
        resp = ocsp.load_der_ocsp_response(requests.get(base + path, timeout=10).content)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise SystemExit(f"{base}: OCSP {resp.response_status} for {serial:x}")
        want = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
        if resp.serial_number != serial or resp.hash_algorithm.name != "sha256" or resp.certificate_status != want:
            raise SystemExit(f"{base}: OCSP answer for {serial:x}: {resp.serial_number:x} {resp.certificate_status}")


class Runner:
    """wrk against either server, with the scripts and files in the run's work directory."""

    def __init__(self, workdir: Path, seconds: int, connections: int) -> None:
        self.workdir, self.seconds, self.connections, self.threads = workdir, seconds, connections, 2

    def wrk(
        self,
        url: str,
        lua: str,
        server: subprocess.Popen[bytes] | None,
        *,
        seconds: int | None = None,
        env: Mapping[str, str] | None = None,
        **more_env: str,
    ) -> WrkResult:
        """One wrk run of `lua` (its inputs in environment variables, as bench/*.py pass them)."""
        script = self.workdir / "peers.lua"
        script.write_text(lua)
        os.environ.update(BENCH_THREADS=str(self.threads), **(env or {}), **more_env)
        return run_wrk(
            url, script, seconds=seconds or self.seconds, connections=self.connections, threads=self.threads, server=server
        )

    def lines(self, name: str, lines: list[str]) -> str:
        path = self.workdir / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)
