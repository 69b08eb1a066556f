"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
"{id}.{timestamp}.{body}" keyed with the decoded `whsec_` secret, sent as `v1,<base64>`; with
two secrets configured (rotation) both signatures, separated by a space."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(secret: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secrets: tuple[bytes, ...], event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers of one attempt. `timestamp` is the attempt's real Unix time (the
    receiver compares it with its own clock to refuse replays), not the service's test clock."""
    return {
        "content-type": "application/json",
        "user-agent": "ca-service-webhooks/1",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, event_id, timestamp, body) for s in secrets),
    }
