"""The CA hierarchy: creating it (`init`), and the active issuing CA for signing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_service.errors import NotFound, Unavailable
from ca_service.pki.dates import add_years
from ca_service.pki.hierarchy import CAUrls, build_issuing, build_root, ca_name
from ca_service.pki.keys import KeyError_
from ca_service.pki.profile import IssuerContext, make_issuer_context
from ca_service.pki.signing import CAPrivateKey
from ca_service.services import audit
from ca_service.services.context import Actor, ServiceContext
from ca_service.services.post_commit import after_commit
from ca_service.store.db import transaction
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


def active_ca(session: Session, kind: str) -> CertificateAuthority | None:
    return session.scalars(
        select(CertificateAuthority)
        .where(CertificateAuthority.kind == kind, CertificateAuthority.active.is_(True))
        .order_by(CertificateAuthority.id.desc())
        .limit(1)
    ).first()


def _next_name(session: Session, kind: str) -> str:
    count = len(session.scalars(select(CertificateAuthority.id).where(CertificateAuthority.kind == kind)).all())
    return f"{kind}-{count + 1}"


def _key(ctx: ServiceContext, key_ref: str, algorithm: str) -> CAPrivateKey:
    # A key without a row is ours from an init that died before commit: reuse it.
    return ctx.keys.load(key_ref) if ctx.keys.exists(key_ref) else ctx.keys.generate(key_ref, algorithm)


def store_ca(
    session: Session,
    ctx: ServiceContext,
    *,
    name: str,
    kind: str,
    cert: x509.Certificate,
    key_algorithm: str,
    parent_id: int | None,
) -> CertificateAuthority:
    row = CertificateAuthority(
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
        active=True,
        created_at=ctx.clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def ensure_hierarchy(ctx: ServiceContext, actor: Actor) -> InitResult:
    """Create the root and issuing CA if absent. Idempotent: a second call changes nothing."""
    s = ctx.settings
    root_alg, issuing_alg = KEY_ALGORITHMS[s.key_algorithm]
    created: list[str] = []
    now = ctx.clock.now().replace(microsecond=0)
    with transaction(ctx.sessions) as session:
        root = active_ca(session, "root")
        if root is None:
            name = _next_name(session, "root")
            key = _key(ctx, name, root_alg)
            cert = build_root(
                key=key,
                subject=ca_name(s.organization_name, f"{s.organization_name} Client Root CA"),
                serial=x509.random_serial_number(),
                not_before=now - timedelta(minutes=5),
                not_after=add_years(now, s.root_validity_years),
            )
            root = store_ca(session, ctx, name=name, kind="root", cert=cert, key_algorithm=root_alg, parent_id=None)
            audit.record(session, ctx, actor, "ca.created", "ca", name, kind="root", serial=root.serial, subject=root.subject)
            created.append(name)
        issuing = active_ca(session, "issuing")
        if issuing is None:
            name = _next_name(session, "issuing")
            key = _key(ctx, name, issuing_alg)
            root_cert = x509.load_der_x509_certificate(root.der)
            cert = build_issuing(
                key=key,
                subject=ca_name(s.organization_name, f"{s.organization_name} Client Issuing CA {name.split('-')[-1]}"),
                root_cert=root_cert,
                root_key=ctx.keys.load(root.key_ref),
                serial=x509.random_serial_number(),
                not_before=now - timedelta(minutes=5),
                not_after=min(add_years(now, s.issuing_validity_years), root.not_after),
                urls=CAUrls(
                    crl_url=f"{s.public_base_url}/crl/{root.name}.crl", issuer_cert_url=f"{s.public_base_url}/ca/{root.name}.crt"
                ),
            )
            issuing = store_ca(session, ctx, name=name, kind="issuing", cert=cert, key_algorithm=issuing_alg, parent_id=root.id)
            audit.record(
                session, ctx, actor, "ca.created", "ca", name, kind="issuing", serial=issuing.serial, subject=issuing.subject
            )
            created.append(name)
        result = InitResult(root.name, issuing.name, tuple(created))
    after_commit(ctx)
    return result


@dataclass(frozen=True)
class ActiveIssuer:
    id: int
    name: str
    context: IssuerContext
    chain_pem: str  # issuing CA then root, PEM
    not_after: datetime


def active_issuer(ctx: ServiceContext) -> ActiveIssuer:
    """The signing CA, with its key loaded and decrypted once per process."""
    cached = ctx.cache.get("issuer")
    if isinstance(cached, ActiveIssuer):
        return cached
    with ctx.lock:
        cached = ctx.cache.get("issuer")
        if isinstance(cached, ActiveIssuer):
            return cached
        with ctx.sessions() as session:
            issuing = active_ca(session, "issuing")
            root = session.get(CertificateAuthority, issuing.parent_id) if issuing and issuing.parent_id else None
        if issuing is None or root is None:
            raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
        try:
            key = ctx.keys.load(issuing.key_ref)
        except KeyError_ as exc:
            raise Unavailable(str(exc), code="ca-key-unavailable") from None
        cert = x509.load_der_x509_certificate(issuing.der)
        base = ctx.settings.public_base_url
        issuer = ActiveIssuer(
            id=issuing.id,
            name=issuing.name,
            context=make_issuer_context(
                cert,
                key,
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
        ctx.cache["issuer"] = issuer
        return issuer


def ca_certificate_der(ctx: ServiceContext, name: str) -> tuple[bytes, datetime]:
    """DER of a CA certificate by name; `issuing` and `root` name the active ones."""
    with ctx.sessions() as session:
        if name in {"issuing", "root"}:
            row = active_ca(session, name)
        else:
            row = session.scalars(select(CertificateAuthority).where(CertificateAuthority.name == name)).first()
            if row is not None and row.kind not in {"issuing", "root"}:
                row = None
    if row is None:
        raise NotFound(f"no CA certificate named {name!r}", code="ca-not-found")
    return row.der, row.created_at


def check_ca_keys(ctx: ServiceContext) -> None:
    """Raise KeyError_ if an active CA key is missing, exposed, or cannot be decrypted."""
    with ctx.sessions() as session:
        rows = session.scalars(select(CertificateAuthority).where(CertificateAuthority.active.is_(True))).all()
    if not any(r.kind == "issuing" for r in rows):
        raise KeyError_("the CA hierarchy is not initialised: run `ca-service init`")
    ctx.keys.check_all()
    for row in rows:
        ctx.keys.check(row.key_ref)
    active_issuer(ctx)
