"""The issuance brake's count reads no further than the limit: an organisation that operators let
issue thousands in an hour does not make every later issuance count them all."""

from __future__ import annotations

from datetime import timedelta

from ca_service.store import revocations
from ca_service.store.db import reading
from tests.support.workers import insert_certificates


def test_the_count_stops_at_the_limit_and_names_the_oldest(ctx) -> None:
    now = ctx.clock.now()
    insert_certificates(ctx, "busy", [{"login_id": f"busy-{i}", "not_after": now + timedelta(days=300)} for i in range(5)])
    with reading(ctx.sessions) as session:
        capped = revocations.certificates_issued_since(session, "busy", now - timedelta(hours=1), up_to=3)
        whole = revocations.certificates_issued_since(session, "busy", now - timedelta(hours=1), up_to=50)
        later = revocations.certificates_issued_since(session, "busy", now + timedelta(seconds=1), up_to=50)
    assert capped[0] == 3 and whole[0] == 5
    assert capped[1] is not None and whole[1] is not None and capped[1] == whole[1]
    assert later == (0, None)
