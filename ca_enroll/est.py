"""The EST client (RFC 7030) for the CA's `/.well-known/est/` endpoints (DESIGN §4c)."""

from __future__ import annotations

import base64
import binascii
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from requests.adapters import HTTPAdapter

from ca_enroll.errors import EnrollError, Exit

EST_PATH = "/.well-known/est/"
TIMEOUT = 30


class _ContextAdapter(HTTPAdapter):
    """Hands requests/urllib3 one ssl.SSLContext: the trust store (--tls-ca or the system's) and,
    for simplereenroll, the client certificate and key loaded from memory-backed temp files."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)


def tls_context(tls_ca: Path | None) -> ssl.SSLContext:
    """Server authentication: the given CA file, else the system's trust store."""
    return ssl.create_default_context(cafile=str(tls_ca) if tls_ca else None)


@dataclass(frozen=True)
class RenewalWindow:
    start: datetime
    end: datetime
    explanation_url: str | None


class EstClient:
    def __init__(self, server: str, tls_ca: Path | None, context: ssl.SSLContext | None = None) -> None:
        self.server = server.rstrip("/")
        self.base = self.server + EST_PATH
        self.tls_ca = tls_ca
        self.session = requests.Session()
        self.session.verify = str(tls_ca) if tls_ca else True
        self.session.mount("https://", _ContextAdapter(context or tls_context(tls_ca)))
        self.session.headers["User-Agent"] = "ca-enroll/1"

    def close(self) -> None:
        self.session.close()

    # -- the four calls -----------------------------------------------------------------------
    def cacerts(self) -> list[x509.Certificate]:
        r = self._send("GET", "cacerts")
        return _certs_of(_body_der(r))

    def simpleenroll(self, login_id: str, code: str, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        r = self._send("POST", "simpleenroll", data=_b64_csr(csr), auth=(login_id, code), headers=_CSR_HEADERS)
        return _single(_certs_of(_body_der(r)))

    def simplereenroll(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        r = self._send("POST", "simplereenroll", data=_b64_csr(csr), headers=_CSR_HEADERS)
        return _single(_certs_of(_body_der(r)))

    def renewal_info(self, serial: str) -> RenewalWindow:
        r = self._send("GET", f"renewal-info/{serial}")
        try:
            body = r.json()
            window = body["suggestedWindow"]
            return RenewalWindow(_instant(window["start"]), _instant(window["end"]), body.get("explanationURL"))
        except (ValueError, KeyError, TypeError) as exc:
            raise EnrollError(Exit.REFUSED, "bad-response", detail=f"renewal-info: {exc}") from exc

    # -- transport and errors -----------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            r = self.session.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise EnrollError(Exit.UNTRUSTED_TLS, "untrusted-tls", server=self.server) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise EnrollError(Exit.UNREACHABLE, "unreachable", server=self.server, detail=type(exc).__name__) from exc
        if r.status_code >= 400:
            raise problem_error(r)
        return r


_CSR_HEADERS = {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}


def problem_error(r: requests.Response) -> EnrollError:
    """A refusal of the server as the user's failure: one exit code per case of §4c."""
    try:
        problem = r.json() if "json" in r.headers.get("Content-Type", "") else {}
    except ValueError:
        problem = {}
    code = str(problem.get("code") or "")
    detail = str(problem.get("detail") or problem.get("title") or r.reason or "")
    if r.status_code == 401:
        return EnrollError(Exit.BAD_CODE, "bad-code")
    if code == "login-method-not-certificate":
        return EnrollError(Exit.NOT_CERTIFICATE_METHOD, "not-certificate-method")
    if code == "active-certificate-exists":
        serial = problem.get("serial") or _hex_in(detail)
        return EnrollError(Exit.ALREADY_HOLDS_VALID, "already-holds-valid", serial=serial or "", detail=detail)
    if code == "renewal-not-open":
        return EnrollError(Exit.RENEWAL_NOT_OPEN, "refused", status=r.status_code, code=code, detail=detail)
    if code == "certificate-not-active":
        return EnrollError(Exit.RENEWAL_NOT_OPEN, "renewal-closed")
    return EnrollError(Exit.REFUSED, "refused", status=r.status_code, code=code or "-", detail=detail[:300])


def _hex_in(text: str) -> str | None:
    for word in text.replace(",", " ").replace(")", " ").replace("(", " ").split():
        if len(word) >= 16 and all(c in "0123456789abcdef" for c in word):
            return word
    return None


def _b64_csr(csr: x509.CertificateSigningRequest) -> bytes:
    return base64.encodebytes(csr.public_bytes(Encoding.DER))


def _body_der(r: requests.Response) -> bytes:
    """EST bodies are base64 (Content-Transfer-Encoding: base64); accept plain DER as well."""
    if r.headers.get("Content-Transfer-Encoding", "").lower() == "base64" or not r.content.startswith(b"\x30"):
        try:
            return base64.b64decode(b"".join(r.content.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EnrollError(Exit.REFUSED, "bad-response", detail="base64") from exc
    return r.content


def _certs_of(der: bytes) -> list[x509.Certificate]:
    try:
        certs = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise EnrollError(Exit.REFUSED, "bad-response", detail="PKCS#7") from exc
    if not certs:
        raise EnrollError(Exit.REFUSED, "bad-response", detail="no certificate in PKCS#7")
    return certs


def _single(certs: list[x509.Certificate]) -> x509.Certificate:
    """simpleenroll's answer holds the new certificate (RFC 7030 §4.2.3): the one that is no CA."""
    leaves = [c for c in certs if not _is_ca(c)]
    if len(leaves) != 1:
        raise EnrollError(Exit.REFUSED, "bad-response", detail=f"{len(leaves)} end-entity certificates in the answer")
    return leaves[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    return moment
