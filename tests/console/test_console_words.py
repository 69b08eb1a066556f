"""Issue 27 §2: the help desk reads the console without a dictionary. Every audit action and
detail key the services write, and every problem code they raise, has a label in both languages
(collected from the code, so a new one without a label fails here); audit pages show labels,
Japan time and actors in words, never `key=None` dumps; error pages carry no English on a
Japanese page; the revoke pages name a master user's certificate as such."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from babel.messages.pofile import read_po

from ca_service import errors
from ca_service.api import problem_codes
from ca_service.api.app import create_app
from ca_service.console import audit_words, catalogue, messages
from ca_service.services.access import operators
from ca_service.services.audit import trail as audit
from ca_service.services.helpdesk import approvals
from tests.console.test_console_app import Console
from tests.support.console import make_operator
from tests.support.pki import make_csr
from tests.test_operations_cli import setup_org

SOURCE = Path(__file__).parents[2] / "ca_service"
APPROVAL_STATUSES = ("approved", "rejected", "failed", "expired")  # approval.{status}: what a decision or the sweep ends in


def _calls() -> list[tuple[Path, ast.Call, ast.FunctionDef | None]]:
    found = []
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in ast.walk(func):
                f = node.func if isinstance(node, ast.Call) else None
                if isinstance(f, ast.Attribute) and (f.attr, getattr(f.value, "id", None)) in _AUDIT_CALLS:
                    found.append((path, node, func))
    return found


# audit.record(session, ctx, actor, action, ...), audit.event(ctx, actor, action, ...) and a unit of
# work's uow.audit(action, target_type=..., target_id=..., ...) / uow.audit_row(...): where the action is
_AUDIT_CALLS = {("record", "audit"): 3, ("event", "audit"): 2, ("audit", "uow"): 0, ("audit_row", "uow"): 0}
_NOT_DETAILS = ("target_type", "target_id")  # the unit of work's keywords for the event's target


def audit_vocabulary() -> tuple[set[str], set[str]]:
    """Every action and detail key passed to audit.record / audit.event / uow.audit in ca_service: literal
    actions, f-string actions (approval.{status}) expanded, keyword detail keys, and the keys of a
    dict literal passed as **name (registry's `fields`)."""
    actions: set[str] = set()
    keys: set[str] = set()
    for path, call, func in _calls():
        action = call.args[_AUDIT_CALLS[(call.func.attr, call.func.value.id)]]  # type: ignore[attr-defined]
        if isinstance(action, ast.Constant):
            actions.add(action.value)
        elif isinstance(action, ast.JoinedStr):
            prefix = "".join(v.value for v in action.values if isinstance(v, ast.Constant))
            assert prefix == "approval.", (path, ast.unparse(action))  # a new computed action: list its values here
            actions |= {prefix + s for s in APPROVAL_STATUSES}
        else:
            raise AssertionError(f"{path}: audit action {ast.unparse(action)} is neither a literal nor approval.{{status}}")
        for kw in call.keywords:
            if kw.arg is not None:
                if kw.arg not in _NOT_DETAILS:
                    keys.add(kw.arg)
            elif isinstance(kw.value, ast.Name) and func is not None:
                for node in ast.walk(func):
                    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                        if any(getattr(t, "id", None) == kw.value.id for t in node.targets):
                            keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return actions, keys | {"reason", "login_method"}  # approvals' **params (checked in approvals.request)


def problem_code_list() -> set[str]:
    """Every problem code: code="..." arguments, `code = "..."` class attributes (also in tuple
    assignments), the error table's codes and the codes the OpenAPI document lists per operation."""
    codes: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "code" and isinstance(node.value, ast.Constant):
                codes.add(node.value.value)
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign):
                        names = [e for t in stmt.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
                        values = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
                        for name, value in zip(names, values, strict=False):
                            if getattr(name, "id", None) == "code" and isinstance(value, ast.Constant):
                                codes.add(value.value)
    codes |= set(errors.PROBLEMS)
    codes |= {c for listed in [problem_codes.COMMON, *problem_codes.BY_OPERATION.values()] for c in listed}
    return {c for c in codes if isinstance(c, str) and re.fullmatch(r"[a-z]+(-[a-z]+)*", c)}


def _japanese() -> dict[str, str]:
    with catalogue.PO.open("rb") as f:
        return {m.id: m.string for m in read_po(f, locale="ja") if m.id}


def test_every_audit_action_detail_key_and_problem_code_has_a_label_in_both_languages():
    actions, keys = audit_vocabulary()
    codes = problem_code_list()
    assert {"certificate.revoked", "approval.expired", "user.updated"} <= actions and len(actions) > 25
    assert {"ticket", "display_name", "email", "not_after"} <= keys  # display_name/email: registry's **fields
    assert {"ticket-required", "login-refused", "unauthenticated", "revocation-limit-reached"} <= codes
    ja = _japanese()
    for kind, wanted, labels in (
        ("action", actions, audit_words.ACTIONS),
        ("detail key", keys, audit_words.DETAILS),
        ("problem code", codes, messages.ERRORS),
    ):
        missing = sorted(wanted - set(labels))
        assert missing == [], f"{kind}s without a label: {missing}"
        english = {name: str(labels[name]._args[0]) for name in wanted}  # the msgid: the English label
        untranslated = sorted(n for n, en in english.items() if not ja.get(en) or ja[en] == en)
        assert untranslated == [], f"{kind}s without a Japanese label: {untranslated}"
        assert not [n for n, en in english.items() if en == n], f"{kind}s labelled with their own code"


def test_the_audit_page_reads_as_words_in_japan_time(ctx, api):
    api.org("acme", name="Acme 商事")
    master = {"org_id": "acme", "role": "master", "email": "y@example.com", "display_name": "山田 太郎", "ticket": "P-1"}
    r = api.put("/v1/users/ts-yamada", role="operator", json=master)
    assert r.status == 201, r
    api.user("hanako", "acme")
    hanako = api.issue("hanako", make_csr()[1]).json["serial"]
    body = {"reason": "key_compromise", "acting_login_id": "ts-yamada"}  # the front end, for the master user (R10)
    assert api.post(f"/v1/certificates/{hanako}/revocation", json=body).status == 200
    bob = operators.console_actor("bob")
    make_operator(ctx, "bob")
    settled = approvals.request(ctx, bob, approvals.SWITCH, "acme", {"login_method": "id_password"}, "HD-1")
    approvals.reject(ctx, bob, settled.id)
    audit.seal_pending(ctx, wait=True)
    alice = Console(create_app(ctx), make_operator(ctx, "hd-sato"))  # own name: no TOTP-step wait
    for lang, words in (
        ("ja", ["電子証明書を失効", "電子証明書を発行", "失効理由: 鍵の危殆化", "オペレータ Bob", " JST",
                "依頼を却下または取り下げ",
                "マスターユーザ ts-yamada（山田 太郎）— 銀行フロントエンド経由"]),
        ("en", ["Certificate revoked", "Certificate issued", "Reason: Key compromise", "Operator Bob", " JST",
                "Master user ts-yamada (山田 太郎) — via the bank's front end"]),
    ):  # fmt: skip
        page = html.unescape(alice.get(f"/console/audit?lang={lang}").text)
        missing = [w for w in words if w not in page]
        assert missing == [], (lang, missing)
        rows = re.sub(r"<[^>]+>", " ", page.split("<tbody>", 1)[1])  # the table's text
        assert not re.search(r"\w+=", rows) and "None" not in rows and "True" not in rows, lang  # no key=value dumps
        assert ">certificate.revoked<" not in rows and not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", rows), lang
    approvals_page = alice.get("/console/approvals?lang=ja").text
    assert "オペレータ Bob" in approvals_page and "console:bob" not in approvals_page  # requesters by name too
    job = {"published": True, "crl_number": 3}

    with create_app(ctx).test_request_context("/console/?lang=ja"):
        assert audit_words.value_text("published", job["published"]) == "はい"
        shown = audit_words.details({"ticket": None, "display_name": "", "reason": "key_compromise"})
        assert shown == [("失効理由", "鍵の危殆化")]


def test_errors_on_a_japanese_page_carry_no_english_and_revocation_pages_name_the_master(ctx, api):
    serials = setup_org(api, "acme", ("taro",))
    alice = Console(create_app(ctx), make_operator(ctx, "hd-suzuki"))
    missing = alice.get("/console/certificates/ffff?lang=ja")
    assert missing.status_code == 404
    text = missing.text.split('role="alert">', 1)[1].split("</p>", 1)[0]
    assert text and not re.search(r"[A-Za-z]{3,}", text), text  # no English service text appended
    english = alice.get("/console/certificates/ffff?lang=en").text.split('role="alert">', 1)[1].split("</p>", 1)[0]
    assert "No certificate has this serial number." in english
    boss = serials["acme-boss"]
    form = alice.get(f"/console/certificates/{boss}/revoke?lang=ja").text
    assert "マスターユーザ acme-boss" in form and "Acme（acme）" in form and "書面手続き" in form
    assert 'id="ticket" name="ticket" value="" maxlength="100" required' in form
    general = alice.get(f"/console/certificates/{serials['taro']}/revoke").text
    assert "一般ユーザ taro（表示名の登録なし）" in general
    page = f"/console/certificates/{boss}/revoke"
    done = alice.post(page, {"reason": "affiliation_changed", "ticket": "HD-9", "confirmed": "yes"}, page=page)
    assert done.status_code == 302
    after = alice.get(done.headers["Location"].removeprefix("http://localhost")).text
    assert "「電子証明書発行」" in after and "マスターユーザご本人" in after  # who does what next
    assert f"/console/certificates/{boss}/revoke" not in after
    again = alice.get(page)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/console/certificates/{boss}")
    why = alice.get("/console/users/acme-boss").text.split('id="why"', 1)[1].split("</section>", 1)[0]
    assert "マスターユーザご本人" in why and "「電子証明書発行」" in why
    assert not re.search(r"[^\x00-\x7f]\.", why), why  # whole Japanese sentences: no ASCII period after Japanese
    assert "<h1>taro</h1>" in alice.get("/console/users/taro").text  # no display name: not "taro (taro)"
    empty = alice.get("/console/failures?lang=ja").text
    # empty tables say so (how many of the page's tables are empty depends on what earlier tests in
    # this worker left in the failed-job registry: at least the notice and webhook ones are)
    assert empty.count("<td colspan") >= 1 and empty.count("<td colspan") == empty.count(">なし<")
