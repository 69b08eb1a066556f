"""A reference bank front end (NOT part of the CA): the integration guide for the bank's front-end
team. The CA is used only through its HTTP API (bearer token of role `frontend`) and, from the
user's PC, EST through the same nginx. See examples/frontend/README.md."""
