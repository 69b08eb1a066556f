"""Policy and workflows. Importing any service registers the background jobs' routes
(services/tasks.py -> outbox/routes.py), so the outbox relay of every process that commits a
change knows where each entry goes."""

from ca_service.services import tasks as _tasks  # noqa: F401
