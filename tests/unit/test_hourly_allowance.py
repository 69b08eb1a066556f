from datetime import UTC, datetime, timedelta

from ca_service.services.certificates.hourly_allowance import WINDOW, seconds_until_allowed, window_start

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_allowed_while_under_the_limit() -> None:
    assert seconds_until_allowed(19, 20, NOW - timedelta(minutes=59), NOW) is None


def test_at_the_limit_the_wait_is_until_the_oldest_leaves_the_hour() -> None:
    assert seconds_until_allowed(20, 20, NOW - timedelta(minutes=50), NOW) == 600
    assert seconds_until_allowed(25, 20, NOW - timedelta(minutes=59, seconds=59, milliseconds=500), NOW) == 1


def test_never_less_than_a_second() -> None:
    assert seconds_until_allowed(20, 20, NOW - WINDOW, NOW) == 1
    assert seconds_until_allowed(20, 20, None, NOW) == 3600
    assert window_start(NOW) == NOW - timedelta(hours=1)
