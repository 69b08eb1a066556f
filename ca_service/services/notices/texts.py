"""The texts of the 40-day expiry notice (R6), in Japanese with English, dates in Japan time.
Wording follows the bank's FAQ (Q8: 有効期限の40日前に…ご案内しますので、電子証明書を更新してください;
Q10: after expiry, a new certificate from the login screen's issuance button).

The email is one text/plain UTF-8 part, Japanese first, then English, under a bilingual subject.
Not multipart/alternative: its parts are renderings of the same text (plain vs HTML), and a
client shows only one of them, so an English part there would never be seen by most readers."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo


def _date_ja(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _date_en(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} ({tz.key})"


def screen_messages(not_after: datetime, days: int, tz: ZoneInfo) -> tuple[str, str]:
    ja = (
        f"電子証明書の有効期限は{_date_ja(not_after, tz)}です（あと{days}日）。"
        "有効期限が切れるとログインできなくなります。ログイン後の画面から電子証明書を更新してください。"
    )
    en = (
        f"Your electronic certificate expires on {_date_en(not_after, tz)}, in {days} days. "
        "After it expires you cannot log in: please renew it from the screen after login."
    )
    return ja, en


def expiry_email(
    *, to: str, sender: str, login_id: str, serial: str, not_after: datetime, days: int, tz: ZoneInfo
) -> EmailMessage:
    ja, en = screen_messages(not_after, days, tz)
    msg = EmailMessage()
    msg["Subject"] = "【重要】電子証明書の有効期限のお知らせ / Your electronic certificate expires soon"
    msg["From"] = sender
    msg["To"] = to
    body = (
        f"ログインID {login_id} 様\n\n"
        f"{ja}\n\n"
        "更新の手順: インターネットバンキングにログインし、ログイン後の画面の案内に沿って電子証明書を更新してください。\n"
        "有効期限が切れた場合は、ログイン画面の「電子証明書発行」ボタンから電子証明書を再発行してください。\n"
        f"（証明書シリアル番号: {serial}）\n\n"
        "----\n\n"
        f"Dear {login_id},\n\n"
        f"{en}\n\n"
        "How to renew: log in to internet banking and follow the guidance on the screen after login. "
        "If the certificate has already expired, use the 'Issue electronic certificate' button on the login screen.\n"
        f"(Certificate serial number: {serial})\n"
    )
    msg.set_content(body, charset="utf-8")
    return msg
