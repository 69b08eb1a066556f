"""What the bank's screens say (Japanese), keyed by the CA's machine-readable reasons and codes."""

from __future__ import annotations

LOGIN_REFUSED = {
    "expired": "電子証明書の有効期限が切れています。「電子証明書発行」から電子証明書を再インストールしてください。",
    "revoked": "この電子証明書は失効しています。「電子証明書発行」から電子証明書を再インストールしてください。",
    "not-yet-valid": "この電子証明書はまだ有効になっていません。パソコンの日時を確認してください。",
    "unknown-issuer": "当行が発行した電子証明書ではありません。",
    "login-id-mismatch": "選択された電子証明書は、入力されたログインIDのものではありません。",
    "unknown-certificate": "この電子証明書は登録されていません。",
    "login-method-not-certificate": "ご契約の団体は「ID・パスワード方式」です。「ID・パスワード方式」でログインしてください。",
    "certificate-required": "ご契約の団体は「電子証明書方式」のため、「ID・パスワード方式」ではログインできません。",
    "no-certificate": "電子証明書が提示されませんでした。電子証明書がインストールされていないか、有効期限が切れています"
    "（有効期限の切れた電子証明書はブラウザが提示しません）。「電子証明書発行」から電子証明書をインストールしてください。",
    "bad-password": "ログインIDまたはログインパスワードが正しくありません。",
    "user-not-found": "ログインIDまたはログインパスワードが正しくありません。",
}

PAPER = "マスターユーザの電子証明書の再発行は書面手続きが必要です。お取引店またはヘルプデスクまでお問合せください。"

ENROLMENT_REFUSED = {
    "active-certificate-exists": "このログインIDには有効な電子証明書があります。パソコンを変更する場合や削除してしまった場合は、"
    "マスターユーザに「電子証明書の失効」を依頼してください（マスターユーザの方はヘルプデスクへ）。",
    "login-method-not-certificate": "ご契約の団体は「電子証明書方式」ではないため、電子証明書は発行できません。",
    "not-permitted": PAPER,
    "ticket-required": PAPER,
    "user-not-found": "ログインIDまたはログインパスワードが正しくありません。",
}

REVOCATION_REFUSED = {
    "not-permitted": "この利用者の電子証明書は失効できません（マスターユーザの電子証明書は書面手続きです）。",
    "already-revoked": "この電子証明書はすでに失効しています。",
    "revocation-limit-reached": "短時間に多くの失効が行われたため、しばらく失効できません。ヘルプデスクにお問合せください。",
}

REASONS = {
    "unspecified": "電子証明書の削除・再インストール",
    "key_compromise": "パソコンの紛失・盗難",
    "cessation_of_operation": "パソコンの変更",  # not superseded: that is the CA's renewal's own reason
    "affiliation_changed": "利用者の異動",
}


def refused(table: dict[str, str], code: str | None) -> str:
    return table.get(code or "", f"処理できませんでした（{code or 'error'}）。時間をおいて再度お試しください。")
