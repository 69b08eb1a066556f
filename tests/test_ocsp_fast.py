"""Pre-signed OCSP hits answered below Flask (issue 16, api/ocsp_fast.py): the middleware answers
only what the Flask view would answer from the LRU without the database, byte for byte and
header for header, counted and logged as the app does; everything else reaches Flask untouched.
Across the workers of a real gunicorn, tests/e2e/test_ocsp_staleness.py measures the revocation
bound with this path in front."""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from werkzeug.test import Client

from ca_service import metrics
from ca_service.api.app import create_app
from ca_service.api.ocsp_fast import GET_ROUTE, MAX_BODY, OcspFastPath
from ca_service.context import ServiceContext
from ca_service.services.authority.hierarchy import active_issuer
from ca_service.services.ocsp import invalidation as ocsp_invalidation
from ca_service.services.ocsp.state import OcspState
from tests.test_ocsp import now as ocsp_now
from tests.test_ocsp import ocsp_request, revoke_in_db, verify_response
from tests.test_ocsp_presigned import _bump_counter, _presigned, _stop, _until_live

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


class _Downstream:
    """What the middleware hands on to: the Flask app, recorded."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def served(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServiceContext, Client, Client, _Downstream]]:
    """A live process (its own LRU and watch) with its app: a client through the middleware, and
    one on the bare Flask app for comparison."""
    monkeypatch.setattr(ocsp_invalidation, "LIVE_SECONDS", 30.0)  # a late poll on a loaded machine
    process = _presigned(ctx)
    _until_live(process, active_issuer(process).id)
    app = create_app(process)
    flask_app = app.wsgi_app.app.app  # TrustedProxies -> OcspFastPath -> Flask's own wsgi_app
    downstream = _Downstream(flask_app)
    yield process, Client(OcspFastPath(downstream, process)), Client(flask_app), downstream
    _stop(process)


def _get_path(body: bytes) -> str:
    return "/ocsp/" + base64.b64encode(body).decode()


def _comparable(headers: Any) -> dict[str, str]:
    kept = {k: v for k, v in headers.items() if k not in ("X-Request-ID", "Date")}
    if "max-age=" in kept.get("Cache-Control", ""):  # seconds left: may tick between the two requests
        kept["Cache-Control"] = re.sub(r"max-age=\d+", "max-age=N", kept["Cache-Control"])
    return kept


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_warm_hit_is_answered_below_flask_exactly_as_flask_answers_it(served, leaf, issuer, method):
    _process, fast, flask_only, downstream = served
    body = ocsp_request(leaf, issuer)

    def ask(client: Client) -> Any:
        if method == "GET":
            return client.get(_get_path(body))
        return client.post("/ocsp", data=body, headers=OCSP_REQUEST)

    first = ask(fast)  # a miss: Flask signs it, and the LRU keeps it
    assert downstream.calls == 1 and first.status_code == 200
    reference = ask(flask_only)  # the Flask view's answer from the LRU
    hit = ask(fast)
    assert downstream.calls == 1, "the warm hit went to Flask"
    assert hit.status_code == reference.status_code == 200
    assert hit.get_data() == reference.get_data()
    assert _comparable(hit.headers) == _comparable(reference.headers)
    assert re.fullmatch(r"[0-9a-f]{32}", hit.headers["X-Request-ID"])
    status = verify_response(hit.get_data(), issuer, ocsp_now()).certificate_status
    assert status == ocsp.OCSPCertStatus.GOOD


def test_it_is_counted_and_logged_as_flask_would(served, leaf, issuer, caplog):
    _process, fast, _flask_only, downstream = served
    path = _get_path(ocsp_request(leaf, issuer))
    fast.get(path)
    requests_200 = metrics.HTTP_REQUESTS.labels("GET", GET_ROUTE, "200")
    before = requests_200._value.get()
    with caplog.at_level(logging.INFO, logger="ca_service.access"):
        hit = fast.get(path, headers={"X-Request-ID": "help-desk.42"})
    assert downstream.calls == 1
    assert hit.headers["X-Request-ID"] == "help-desk.42"
    assert requests_200._value.get() == before + 1
    lines = [r.getMessage() for r in caplog.records if r.name == "ca_service.access"]
    assert len(lines) == 1 and lines[0].startswith(f"GET {GET_ROUTE} 200 "), lines


def test_what_is_not_a_warm_presigned_hit_reaches_flask(served, ctx, leaf, issuer):
    process, fast, _flask_only, downstream = served
    body = ocsp_request(leaf, issuer)
    fast.get(_get_path(body))  # warm
    calls = downstream.calls
    cases: list[tuple[str, Any]] = [
        ("a nonce", lambda: fast.post("/ocsp", data=ocsp_request(leaf, issuer, nonce=b"n" * 16), headers=OCSP_REQUEST)),
        ("garbage", lambda: fast.post("/ocsp", data=b"\x30\x03garbage", headers=OCSP_REQUEST)),
        ("bad base64", lambda: fast.get("/ocsp/%%%")),
        ("a conditional GET", lambda: fast.get(_get_path(body), headers={"If-None-Match": '"x"'})),
        ("HEAD", lambda: fast.head(_get_path(body))),
        ("another certificate's serial", lambda: fast.get(_get_path(_other_serial(leaf, issuer)))),
        ("a chunked body", lambda: fast.post("/ocsp", data=body, headers={**OCSP_REQUEST, "Transfer-Encoding": "chunked"})),
        ("a large body", lambda: fast.post("/ocsp", data=body + b"\0" * MAX_BODY, headers=OCSP_REQUEST)),
    ]
    for what, ask in cases:
        answer = ask()
        calls += 1
        assert downstream.calls == calls, f"{what} was answered below Flask"
        assert answer.status_code in (200, 304), (what, answer.status_code)
    nonce_answer = fast.post("/ocsp", data=ocsp_request(leaf, issuer, nonce=b"m" * 16), headers=OCSP_REQUEST)
    assert verify_response(nonce_answer.get_data(), issuer, ocsp_now()).certificate_status == ocsp.OCSPCertStatus.GOOD
    process.local(OcspState).watch.stop()  # the watch no longer live: even the warm one goes to Flask
    fast.get(_get_path(body))
    assert downstream.calls == calls + 2


def test_a_revocation_stops_the_fast_answer_at_the_next_poll(served, ctx, leaf, issuer):
    process, fast, _flask_only, downstream = served
    path = _get_path(ocsp_request(leaf, issuer))
    fast.get(path)
    fast.get(path)
    assert downstream.calls == 1
    revoke_in_db(ctx, leaf, "key_compromise", ocsp_now().replace(microsecond=0))  # bumps no counter
    _bump_counter(ctx, active_issuer(process).id)  # what every revocation's transaction does
    deadline = time.monotonic() + 5
    while verify_response(fast.get(path).get_data(), issuer, ocsp_now()).certificate_status != ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() < deadline, "the revocation was not seen within the bound"
        time.sleep(0.02)


def test_with_presigned_responses_off_nothing_is_answered_below_flask(ctx, api, leaf, issuer):
    """The tests' in-process apps (and any process whose watch is off) always go through Flask."""
    downstream = _Downstream(lambda environ, start_response: (start_response("204 No Content", []), [b""])[1])
    fast = Client(OcspFastPath(downstream, ctx))
    path = _get_path(ocsp_request(leaf, issuer))
    api.get(path, role=None)  # warm ctx's LRU through the app
    fast.get(path)
    assert downstream.calls == 1


def _other_serial(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A request naming our issuing CA and a serial it never issued (not in the LRU)."""
    ours = ocsp.load_der_ocsp_request(ocsp_request(leaf, issuer))
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        ours.issuer_name_hash,
        ours.issuer_key_hash,
        leaf.serial_number + 1,
        hashes.SHA1(),  # noqa: S303 - RFC 5019 CertID
    )
    return builder.build().public_bytes(serialization.Encoding.DER)
