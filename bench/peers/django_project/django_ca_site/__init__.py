"""A minimal Django project serving django-ca 3.2 for bench/peers/django_ca.py. It runs in the
peer's own virtualenv (var/peers/django-ca-venv), never in the repository's."""
