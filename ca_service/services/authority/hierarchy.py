"""The CA hierarchy: creating it (`init`), and the active issuing CA for signing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service.constants import CaKind
from ca_service.context import Actor, ServiceContext
from ca_service.errors import NotFound, Unavailable
from ca_service.per_process import Once
from ca_service.pki.dates import add_years
from ca_service.pki.hierarchy import CAUrls, build_issuing, build_root, ca_name
from ca_service.pki.keys import KeyUnavailable
from ca_service.pki.profile import IssuerContext, make_issuer_context
from ca_service.pki.signer import Signer
from ca_service.services.audit.change import change
from ca_service.store import authorities as cas
from ca_service.store.db import Tx, reading
from ca_service.store.models import CertificateAuthority

KEY_ALGORITHMS = {"ec": ("ec-p384", "ec-p256"), "rsa": ("rsa-4096", "rsa-3072")}  # (root, issuing)


@dataclass(frozen=True)
class InitResult:
    root_name: str
    issuing_name: str
    created: tuple[str, ...]


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def ski_hex(cert: x509.Certificate) -> str:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


active_ca = cas.active_ca  # (session, kind): the newest active CA of that kind


def _next_name(session: Tx, kind: str) -> str:
    return f"{kind}-{cas.count_of_kind(session, kind) + 1}"


def _key(ctx: ServiceContext, key_ref: str, algorithm: str) -> Signer:
    # A key without a row is ours from an init that died before commit: reuse it.
    if not ctx.keys.exists(key_ref):
        ctx.keys.generate(key_ref, algorithm)
    return ctx.keys.signer(key_ref)


def store_ca(
    session: Tx,
    ctx: ServiceContext,
    *,
    name: str,
    kind: str,
    cert: x509.Certificate,
    key_algorithm: str,
    parent_id: int | None,
) -> CertificateAuthority:
    new = cas.NewAuthority(
        name=name,
        kind=kind,
        parent_id=parent_id,
        serial=serial_hex(cert.serial_number),
        subject=cert.subject.rfc4514_string(),
        ski=ski_hex(cert),
        key_ref=name,
        key_algorithm=key_algorithm,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der=cert.public_bytes(serialization.Encoding.DER),
        created_at=ctx.clock.now(),
    )
    return cas.insert_ca(session, new)


def ensure_hierarchy(ctx: ServiceContext, actor: Actor, *, rollover: bool = False) -> InitResult:
    """Create the root and issuing CA if absent. Idempotent: a second call changes nothing.
    `rollover` (`ca-service ca rollover`, a ceremony): retire the active issuing CA and create
    the next one under the root in the same transaction (the retired one keeps its key for its
    CRL and OCSP until its certificates expire)."""
    s = ctx.settings
    root_alg, issuing_alg = KEY_ALGORITHMS[s.key_algorithm]
    created: list[str] = []
    now = ctx.clock.now().replace(microsecond=0)
    with change(ctx, actor) as uow:
        session = uow.session
        root = active_ca(session, CaKind.ROOT)
        if root is None:
            name = _next_name(session, CaKind.ROOT)
            key = _key(ctx, name, root_alg)
            cert = build_root(
                key=key,
                subject=ca_name(s.organization_name, f"{s.organization_name} Client Root CA"),
                serial=x509.random_serial_number(),
                not_before=now - timedelta(minutes=5),
                not_after=add_years(now, s.root_validity_years),
            )
            root = store_ca(session, ctx, name=name, kind=CaKind.ROOT, cert=cert, key_algorithm=root_alg, parent_id=None)
            uow.audit("ca.created", target_type="ca", target_id=name, kind=CaKind.ROOT, serial=root.serial, subject=root.subject)
            created.append(name)
        issuing = active_ca(session, CaKind.ISSUING)
        if rollover and issuing is not None:
            issuing.active = False
            session.flush()
            uow.audit("ca.retired", target_type="ca", target_id=issuing.name, kind=CaKind.ISSUING, serial=issuing.serial)
            issuing = None
        if issuing is None:
            name = _next_name(session, CaKind.ISSUING)
            key = _key(ctx, name, issuing_alg)
            root_cert = x509.load_der_x509_certificate(root.der)
            cert = build_issuing(
                key=key,
                subject=ca_name(s.organization_name, f"{s.organization_name} Client Issuing CA {name.split('-')[-1]}"),
                root_cert=root_cert,
                root_key=ctx.keys.signer(root.key_ref),
                serial=x509.random_serial_number(),
                not_before=now - timedelta(minutes=5),
                not_after=min(add_years(now, s.issuing_validity_years), root.not_after),
                urls=CAUrls(
                    crl_url=f"{s.public_base_url}/crl/{root.name}.crl", issuer_cert_url=f"{s.public_base_url}/ca/{root.name}.crt"
                ),
            )
            issuing = store_ca(
                session, ctx, name=name, kind=CaKind.ISSUING, cert=cert, key_algorithm=issuing_alg, parent_id=root.id
            )
            uow.audit(
                "ca.created",
                target_type="ca",
                target_id=name,
                kind=CaKind.ISSUING,
                serial=issuing.serial,
                subject=issuing.subject,
            )
            created.append(name)
        result = InitResult(root.name, issuing.name, tuple(created))
    if created:
        ctx.local(ActiveIssuerOnce).clear()  # this process signs with the new issuing CA from now on
    return result


@dataclass(frozen=True)
class ActiveIssuer:
    id: int
    name: str
    context: IssuerContext
    chain_pem: str  # issuing CA then root, PEM
    not_after: datetime


class ActiveIssuerOnce(Once[ActiveIssuer]):
    """This process's active issuer (`ctx.local(ActiveIssuerOnce)`), made on first use."""


def active_issuer(ctx: ServiceContext) -> ActiveIssuer:
    """The signing CA, with its key's signer obtained (and a file key decrypted) once per process."""
    return ctx.local(ActiveIssuerOnce).get(lambda: _load_active_issuer(ctx))


def _load_active_issuer(ctx: ServiceContext) -> ActiveIssuer:
    with reading(ctx.sessions) as session:
        issuing = active_ca(session, CaKind.ISSUING)
        root = cas.get_ca(session, issuing.parent_id) if issuing and issuing.parent_id else None
    if issuing is None or root is None:
        raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
    try:
        signer = ctx.keys.signer(issuing.key_ref)
    except KeyUnavailable as exc:
        raise Unavailable(str(exc), code="ca-key-unavailable") from None
    cert = x509.load_der_x509_certificate(issuing.der)
    base = ctx.settings.public_base_url
    issuer = ActiveIssuer(
        id=issuing.id,
        name=issuing.name,
        context=make_issuer_context(
            cert,
            signer,
            crl_url=f"{base}/crl/{issuing.name}.crl",
            ocsp_url=f"{base}/ocsp",
            ca_cert_url=f"{base}/ca/{issuing.name}.crt",
        ),
        chain_pem=(
            cert.public_bytes(serialization.Encoding.PEM)
            + x509.load_der_x509_certificate(root.der).public_bytes(serialization.Encoding.PEM)
        ).decode(),
        not_after=issuing.not_after,
    )
    return issuer


def ca_certificate_der(ctx: ServiceContext, name: str) -> tuple[bytes, datetime]:
    """DER of a CA certificate by name; `issuing` and `root` name the active ones."""
    with reading(ctx.sessions) as session:
        if name in {CaKind.ISSUING, CaKind.ROOT}:
            row = active_ca(session, name)
        else:
            row = cas.by_name(session, name)
            if row is not None and row.kind not in {CaKind.ISSUING, CaKind.ROOT}:
                row = None
    if row is None:
        raise NotFound(f"no CA certificate named {name!r}", code="ca-not-found")
    return row.der, row.created_at


def check_ca_keys(ctx: ServiceContext) -> None:
    """Raise KeyUnavailable if an active online CA key is missing, exposed, or cannot be decrypted
    (not the root's: it is offline, used only by ceremony commands)."""
    with reading(ctx.sessions) as session:
        rows = cas.active_cas(session)
    if not any(r.kind == CaKind.ISSUING for r in rows):
        raise KeyUnavailable("the CA hierarchy is not initialised: run `ca-service init`")
    ctx.keys.check_all()
    for row in rows:
        if row.kind != CaKind.ROOT:
            ctx.keys.check(row.key_ref)
    active_issuer(ctx)
