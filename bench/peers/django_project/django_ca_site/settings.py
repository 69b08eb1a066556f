"""Django settings for the django-ca peer benchmark, from the environment set by
bench/peers/django_ca.py. Deliberately close to a production deployment (DEBUG off, persistent
database connections, Redis cache) except for one benchmark-only change, said in every output:
the password hasher is MD5, because django-ca's REST API authenticates each request with HTTP
Basic and hashes the password every time (with PBKDF2, Django's default, issue 16 reports ~3
issuances/s on this machine)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

_DATA = Path(os.environ["BENCH_PEER_DATA"])

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "django_ca_site.urls"
WSGI_APPLICATION = "django_ca_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_ca",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["BENCH_PEER_DB"],
        "USER": os.environ.get("BENCH_PEER_DB_USER", "postgres"),
        "HOST": os.environ.get("BENCH_PEER_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_PEER_DB_PORT", "5432"),
        "CONN_MAX_AGE": None,  # persistent: without it Django opens a connection per request
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["BENCH_PEER_REDIS_URL"],
    }
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(_DATA / "files")}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "django-ca": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(_DATA / "ca"), "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    },
}

# Benchmark-only: see the module docstring.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CA_ENABLE_REST_API = True
CA_ENABLE_ACME = False
CA_USE_CELERY = False  # tasks (signing an order, OCSP keys) run synchronously after the commit
CA_DEFAULT_HOSTNAME = os.environ.get("BENCH_PEER_HOSTNAME", "127.0.0.1")
CA_DEFAULT_ELLIPTIC_CURVE = "secp256r1"
CA_DEFAULT_SIGNATURE_HASH_ALGORITHM = "SHA-256"
# Pre-generated OCSP responses served from the cache (set for the "cached" scenario only: with it
# set, django-ca answers every request, with or without a nonce, from the pre-generated response).
if os.environ.get("BENCH_PEER_OCSP_CACHE") == "1":
    CA_OCSP_RESPONSE_CACHE_EXPIRES = timedelta(days=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
