"""Policy and workflows. Importing any service registers the background jobs' routes
(services/background/jobs.py -> outbox/routes.py), so the outbox relay of every process that commits a
change knows where each entry goes."""

from ca_service.services.background import jobs as _tasks  # noqa: F401
