"""What ca-enroll says, in Japanese (default) and English (--lang en)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")

MESSAGES: dict[str, dict[str, str]] = {
    "unreachable": {
        "ja": "サーバ {server} に接続できません。ネットワーク接続とURLを確認してください。({detail})",
        "en": "Cannot reach the server {server}. Check the network and the URL. ({detail})",
    },
    "untrusted-tls": {
        "ja": "サーバ {server} のTLS証明書を信頼できません。銀行から案内されたURLか確認してください"
        "（検証用のCA証明書は --tls-ca で指定できます）。",
        "en": "The TLS certificate of {server} is not trusted. Check that this is the URL the bank gave you"
        " (a CA certificate to trust can be given with --tls-ca).",
    },
    "bad-code": {
        "ja": "発行コードが正しくないか、有効期限切れまたは使用済みです。ログイン画面の「電子証明書発行」で"
        "新しい発行コードを取得してください。",
        "en": "The enrolment code is wrong, expired or already used. Get a new code from 電子証明書発行 on the login screen.",
    },
    "not-certificate-method": {
        "ja": "ご契約の団体は「電子証明書方式」ではないため、電子証明書を発行できません。",
        "en": "Your organisation does not use the certificate login method: no certificate can be issued.",
    },
    "already-holds-valid": {
        "ja": "このログインID（{login_id}）には有効な電子証明書があります{serial_note}。"
        "有効期限の40日前からは「ca-enroll renew」で更新できます。パソコンを変更する場合や証明書を"
        "削除してしまった場合は、マスターユーザに「電子証明書の失効」を依頼してください。",
        "en": "The login ID {login_id} already holds a valid certificate{serial_note}. From 40 days before"
        " its expiry, renew it with `ca-enroll renew`. For a new PC or a deleted certificate, ask your"
        " master user to revoke it first.",
    },
    "renewal-not-open": {
        "ja": "{login_id} の電子証明書（有効期限 {not_after}）はまだ更新できません。更新できるのは {start} からです。",
        "en": "The certificate of {login_id} (expires {not_after}) cannot be renewed yet: renewal opens {start}.",
    },
    "renewal-closed": {
        "ja": "{login_id} の電子証明書は有効期限が切れているか失効しています。ログイン画面の「電子証明書発行」"
        "から新しい電子証明書を発行してください。",
        "en": "The certificate of {login_id} has expired or is revoked. Get a new one through 電子証明書発行"
        " on the login screen.",
    },
    "renew-unauthenticated": {
        "ja": "サーバが {login_id} の電子証明書による認証を受け付けませんでした（失効しているか、有効期限切れです）。"
        "ログイン画面の「電子証明書発行」から新しい電子証明書を発行してください。",
        "en": "The server did not accept the certificate of {login_id} (revoked or expired). Get a new one"
        " through 電子証明書発行 on the login screen.",
    },
    "check-failed": {
        "ja": "受信した電子証明書の確認に失敗しました（{reason}）。インストールしていません。ヘルプデスクに連絡してください。",
        "en": "The certificate received failed the app's checks ({reason}). Nothing was installed. Contact the help desk.",
    },
    "store-failed": {
        "ja": "電子証明書を保存できませんでした: {detail}",
        "en": "Could not store the certificate: {detail}",
    },
    "nss-tools-missing": {
        "ja": "NSSのツール（certutil, pk12util）が見つかりません。libnss3-tools をインストールしてください。",
        "en": "The NSS tools (certutil, pk12util) are missing: install libnss3-tools.",
    },
    "refused": {
        "ja": "サーバが要求を拒否しました（HTTP {status} {code}）: {detail}",
        "en": "The server refused the request (HTTP {status} {code}): {detail}",
    },
    "bad-response": {
        "ja": "サーバの応答を読み取れませんでした: {detail}",
        "en": "Could not read the server's answer: {detail}",
    },
    "not-installed": {
        "ja": "{login_id} の電子証明書はこのパソコン（{nssdb}）にインストールされていません。",
        "en": "No certificate of {login_id} is installed here ({nssdb}).",
    },
    "nothing-installed": {
        "ja": "このパソコン（{nssdb}）に電子証明書はインストールされていません。",
        "en": "No certificate is installed here ({nssdb}).",
    },
    "code-prompt": {"ja": "発行コード（XXXX-XXXX-XXXX-XXXX）", "en": "Enrolment code (XXXX-XXXX-XXXX-XXXX)"},
    "code-empty": {"ja": "発行コードが入力されていません。", "en": "No enrolment code was given."},
    "pkcs12-password-prompt": {
        "ja": "PKCS#12ファイルのパスワード（インポート時に入力します）",
        "en": "Password for the PKCS#12 file (asked again when importing it)",
    },
    "generating": {"ja": "鍵を生成しています（P-256）…", "en": "Generating a key (P-256)…"},
    "installed": {
        "ja": "電子証明書をインストールしました。\n  ログインID: {login_id}\n  シリアル番号: {serial}\n"
        "  有効期限: {not_after}\n  保存先: {nssdb}\n"
        "電子証明書を有効にするために、一度すべてのブラウザを閉じてください。",
        "en": "The certificate is installed.\n  Login ID: {login_id}\n  Serial: {serial}\n"
        "  Expires: {not_after}\n  Stored in: {nssdb}\nClose every browser window once so that it is used.",
    },
    "renewed": {
        "ja": "電子証明書を更新しました。\n  ログインID: {login_id}\n  新しいシリアル番号: {serial}\n"
        "  有効期限: {not_after}\n  以前の電子証明書（{old_serial}）は削除しました。",
        "en": "The certificate is renewed.\n  Login ID: {login_id}\n  New serial: {serial}\n"
        "  Expires: {not_after}\n  The previous certificate ({old_serial}) was removed.",
    },
    "pkcs12-written": {
        "ja": "PKCS#12ファイル {path} を作成しました（AES-256で暗号化）。Windowsでは PowerShell で次を実行してください"
        "（鍵はエクスポート不可として取り込まれます）:\n{command}\n取り込んだ後、このファイルは削除してください。",
        "en": "Wrote the PKCS#12 file {path} (AES-256). On Windows, run this in PowerShell (the key is imported"
        " as non-exportable):\n{command}\nDelete the file once it is imported.",
    },
    "status-header": {
        "ja": "ログインID  シリアル番号  有効期限（日本時間）  状態",
        "en": "Login ID  Serial  Expires (Japan time)  State",
    },
    "state-valid": {"ja": "有効（残り{days}日）", "en": "valid ({days} days left)"},
    "state-expired": {"ja": "有効期限切れ", "en": "expired"},
    "state-renewable": {"ja": "有効（残り{days}日・更新できます）", "en": "valid ({days} days left, renewable)"},
    "nothing-to-renew": {
        "ja": "更新が必要な電子証明書はありません（{detail}）。",
        "en": "No certificate needs renewing ({detail}).",
    },
    "check-chain": {"ja": "銀行のCAにつながらない証明書です", "en": "it does not chain to the bank's CA"},
    "check-cn": {"ja": "ログインIDが一致しません", "en": "its login ID is not {login_id}"},
    "check-key": {"ja": "このアプリが作成した鍵の証明書ではありません", "en": "it is not for the key this app made"},
    "check-validity": {"ja": "有効期間外の証明書です", "en": "it is outside its validity period"},
    "check-eku": {"ja": "クライアント認証用の証明書ではありません", "en": "it is not a client-authentication certificate"},
    "check-cacerts": {"ja": "CA証明書を取得できません", "en": "the CA certificates could not be read"},
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(lang: str, key: str, **params: Any) -> str:
    """The message; a parameter the failing step did not know renders as nothing, never a crash."""
    entry = MESSAGES[key]
    return entry.get(lang, entry["en"]).format_map(_Blank(params))


def jst(moment: datetime, lang: str) -> str:
    """A moment in Japan time, as the FAQ's user reads it (Q9)."""
    local = moment.astimezone(JST)
    if lang == "ja":
        return local.strftime("%Y年%m月%d日 %H:%M:%S（日本時間）")
    return local.strftime("%Y-%m-%d %H:%M:%S JST")
