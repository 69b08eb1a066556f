"""Peer-side steps of bench/peers/django_ca.py, run with the peer virtualenv's Python (Django set
up from django_ca_site.settings). Each prints one JSON line on stdout; any failure is an
exception and a non-zero exit, which the driver turns into a loud stop.

    python -m django_ca_site.tool setup USER PASSWORD    # the API user and its permissions
    python -m django_ca_site.tool ocsp-cache SERIALS     # pre-generate OCSP responses (one hex serial a line)
    python -m django_ca_site.tool crl OUT.der            # time one CRL (django-ca's "user" CRL profile)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_ca_site.settings")

import django

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django_ca.models import Certificate, CertificateAuthority, CertificateRevocationList  # noqa: E402


def setup(username: str, password: str) -> dict[str, object]:
    ca = CertificateAuthority.objects.get()  # the benchmark creates exactly one
    user = User.objects.create_user(username=username, password=password)
    codenames = ["sign_certificate", "view_certificate", "revoke_certificate"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_ca", codename__in=codenames))
    if not ca.ocsp_key_backend_options.get("certificate", {}).get("pem"):
        raise SystemExit("init_ca did not create the OCSP responder certificate")
    return {"ca_serial": ca.serial, "ca_der_hex": ca.pub.der.hex()}


def ocsp_cache(serials_file: str) -> dict[str, object]:
    """What django-ca's periodic task generate_ocsp_responses does, for the serials asked about."""
    serials = Path(serials_file).read_text().split()
    start = time.perf_counter()
    for cert in Certificate.objects.select_related("ca").filter(serial__in=serials):
        cert.generate_ocsp_response()
    done = Certificate.objects.filter(serial__in=serials, ocsp_response__isnull=False).count()
    if done != len(serials):
        raise SystemExit(f"pre-generated {done} OCSP responses for {len(serials)} serials")
    return {"responses": done, "seconds": time.perf_counter() - start}


def crl(out: str) -> dict[str, object]:
    """One CRL of the CA's end-entity certificates, as the periodic task generate_crls makes it:
    the revoked rows read from PostgreSQL, each certificate's serial from its stored DER, built with
    cryptography's CRL builder, signed and stored in the database."""
    ca = CertificateAuthority.objects.get()
    options = ca.key_backend.use_model.model_validate({}, context={"ca": ca, "backend": ca.key_backend}, strict=True)
    start = time.perf_counter()
    obj = CertificateRevocationList.objects.create_certificate_revocation_list(ca, options, only_contains_user_certs=True)
    seconds = time.perf_counter() - start
    der = bytes(obj.data)
    Path(out).write_bytes(der)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "bytes": len(der)}


def main() -> None:
    command, *args = sys.argv[1:]
    steps: dict[str, Callable[..., dict[str, object]]] = {"setup": setup, "ocsp-cache": ocsp_cache, "crl": crl}
    print(json.dumps(steps[command](*args)), flush=True)


if __name__ == "__main__":
    main()
