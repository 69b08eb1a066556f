"""WSGI entry point for gunicorn (`gunicorn django_ca_site.wsgi`)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_ca_site.settings")
application = get_wsgi_application()
