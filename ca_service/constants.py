"""The domain's names, defined once. StrEnums: each member is its own string value, so rows, JSON
and RQ see the same text as before; the API schemas (api/schemas.py Literals) are checked
against these in tests/unit/test_constants.py."""

from __future__ import annotations

from enum import StrEnum

# The bidi controls (embeddings, overrides, isolates, marks; regex class escapes, so no document
# carries them raw): "invoice\u202etxt.exe" reads "invoiceexe.txt".
BIDI_CONTROLS = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Free text (names, tickets): no C0/C1 control characters (NUL breaks PostgreSQL, the others
# break logs and screens) and no bidi control. A full match is meant (re.fullmatch).
FREE_TEXT = r"^[^\x00-\x1f\x7f-\x9f" + BIDI_CONTROLS + r"]*$"


class RevocationReason(StrEnum):
    """The API's revocation reasons (RFC 5280 CRLReason names in snake case; pki/reasons.py maps them)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"


class CaKind(StrEnum):
    ROOT = "root"
    ISSUING = "issuing"
    OCSP = "ocsp"  # a delegated OCSP responder certificate


class UserRole(StrEnum):
    MASTER = "master"
    GENERAL = "general"


class ClientRole(StrEnum):
    """API client roles (DESIGN §4); SYSTEM is the service's own actor (jobs), never a client."""

    FRONTEND = "frontend"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    SYSTEM = "system"


CLIENT_ROLES = (ClientRole.FRONTEND.value, ClientRole.OPERATOR.value, ClientRole.AUDITOR.value)  # plain strings


class LoginMethod(StrEnum):
    ID_PASSWORD = "id_password"  # noqa: S105 - a login method, not a password
    CERTIFICATE = "certificate"


class QueueName(StrEnum):
    """The RQ queues the workers listen on."""

    CRL = "crl"
    MAIL = "mail"
    DEFAULT = "default"
    WEBHOOKS = "webhooks"  # lifecycle events to the front end: last, so never before a CRL or an email


QUEUE_NAMES = tuple(q.value for q in QueueName)  # plain strings (click.Choice, messages, RQ)
