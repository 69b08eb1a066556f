"""The RQ job functions, the API's job requests, redispatch, health, failed jobs."""
