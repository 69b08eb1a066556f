"""OCSP jobs: responder certificate rotation (a thin wrapper around the service).

Schedule `rotate_ocsp_responders_job` daily (and once at scheduler start-up): a responder is
replaced once a third of its lifetime (default 30 days) is left, so a daily run leaves ten days
of slack before any responder expires.
"""

from __future__ import annotations

from typing import Any

from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.background.jobs import job_context
from ca_service.timefmt import rfc3339


def rotate_ocsp_responders_job(**_: Any) -> list[dict[str, Any]]:
    """Ensure every unexpired issuing CA has a fresh responder; returns what was done."""
    return [
        {
            "issuer": r.issuer_name,
            "responder": r.responder_name,
            "serial": r.serial,
            "not_after": rfc3339(r.not_after),
            "created": r.created,
        }
        for r in ocsp_signer.ensure_all_responders(job_context())
    ]
