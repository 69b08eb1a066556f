"""Every failure of ca-enroll: a message key (ca_enroll.messages) and a documented exit code."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Exit(IntEnum):
    """The process exit codes (README, "From the user's PC")."""

    OK = 0
    FAILED = 1  # anything not listed below
    USAGE = 2  # click's own code for a bad command line
    UNREACHABLE = 3  # the server could not be reached (DNS, refused, timeout)
    UNTRUSTED_TLS = 4  # the server's TLS certificate is not trusted (see --tls-ca)
    BAD_CODE = 5  # wrong, used, expired or voided enrolment code (or unknown login ID)
    NOT_CERTIFICATE_METHOD = 6  # the organisation does not use the certificate method
    ALREADY_HOLDS_VALID = 7  # the login ID already holds a valid certificate
    RENEWAL_NOT_OPEN = 8  # outside the renewal window
    CHECK_FAILED = 9  # what the server sent does not pass the app's checks: nothing installed
    STORE_FAILED = 10  # the NSS database or the PKCS#12 file could not be written
    REFUSED = 11  # any other refusal by the server (problem+json), or a server error
    NOT_INSTALLED = 12  # no installed certificate for the login ID (renew)


class EnrollError(Exception):
    def __init__(self, exit_code: Exit, key: str, **params: Any) -> None:
        super().__init__(key)
        self.exit_code = exit_code
        self.key = key
        self.params = params
