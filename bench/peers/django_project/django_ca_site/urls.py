"""django-ca's URLs (OCSP, CRL, REST API) under /django_ca/, and /healthz: the framework's
trivial floor, a view that touches neither the database nor a key (as ca-service's /healthz)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz),
    path("django_ca/", include("django_ca.urls")),
]
