"""SQLAlchemy models: the database is the source of truth for everything the CA knows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ca_service.store.types import BigIntPK, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Organization(Base):
    __tablename__ = "organizations"
    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    login_method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"
    login_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.org_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Login IDs are case-preserving but unique ignoring case: "Alice" and "alice" are one login
    # ID, never two users (in two organisations). A second spelling: 409 login-id-taken.
    __table_args__ = (Index("uq_users_login_id_lower", func.lower(login_id), unique=True),)


class CertificateAuthority(Base):
    """A CA certificate this service holds a key for: root, issuing, or OCSP responder."""

    __tablename__ = "certificate_authorities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # root | issuing | ocsp
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(500))
    ski: Mapped[str] = mapped_column(String(128))
    key_ref: Mapped[str] = mapped_column(String(128))
    key_algorithm: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    der: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Incremented, under this row's lock, by every transaction that revokes a certificate this CA
    # issued. A CRL publication holds the same lock, so it sees every counted revocation.
    revocation_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authorities.id"))
    login_id: Mapped[str] = mapped_column(ForeignKey("users.login_id"), index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    # The login ID while this is its current certificate, else NULL. UNIQUE: the database itself
    # refuses a second current certificate per login ID (DESIGN §1), whatever the code does.
    current_login_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # key reuse refused
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)  # the help desk's search (0010)
    key_description: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    renewal_of: Mapped[str | None] = mapped_column(String(40))
    superseded_by: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    revocation_ticket: Mapped[str | None] = mapped_column(String(100))
    revoked_by_client: Mapped[str | None] = mapped_column(String(100))
    revoked_by_login_id: Mapped[str | None] = mapped_column(String(64))
    revoked_by_role: Mapped[str | None] = mapped_column(String(16))  # frontend revocations are braked

    __table_args__ = (
        Index(
            "ix_certificates_revoked",
            "issuer_id",
            "revoked_at",
            postgresql_where=text("revoked_at IS NOT NULL"),
            sqlite_where=text("revoked_at IS NOT NULL"),
        ),
        Index(
            "ix_certificates_frontend_revocations",
            "org_id",
            "revoked_at",
            postgresql_where=text("revoked_by_role = 'frontend'"),
            sqlite_where=text("revoked_by_role = 'frontend'"),
        ),
        Index("ix_certificates_org_issued_at", "org_id", "issued_at"),  # the issuance brake (0015)
    )


class ApiClient(Base):
    __tablename__ = "api_clients"
    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: never
    # After `clients rotate`: the replaced token keeps working until previous_token_expires_at.
    previous_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Written in the transaction of the change; sealed into the hash chain right after commit.

    `id` orders writes; `chain_index` orders the chain. Sealing takes unsealed events in id order,
    so a slow transaction that commits late is chained late instead of breaking the chain.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    client_name: Mapped[str | None] = mapped_column(String(100))
    acting_login_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128), index=True)  # the console's history panels (0010)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    request_id: Mapped[str | None] = mapped_column(String(64))
    chain_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    # HMAC-SHA256 of the event's content under a key the database does not hold (services/audit/trail.py;
    # 0013): the sealer refuses an event without a valid one. NULL only on events sealed before 0013.
    mac: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "ix_audit_events_unsealed",
            "id",
            postgresql_where=text("chain_index IS NULL"),
            sqlite_where=text("chain_index IS NULL"),
        ),
    )


class OutboxEntry(Base):
    """A side effect that needs Redis, recorded in the same transaction as its cause."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    request_id: Mapped[str | None] = mapped_column(String(64))
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_outbox_pending", "id", postgresql_where=text("dispatched_at IS NULL"), sqlite_where=text("dispatched_at IS NULL")
        ),
    )


class Crl(Base):
    """Every published CRL, kept: the numbers are strictly increasing per issuer."""

    __tablename__ = "crls"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authorities.id"))
    crl_number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[datetime] = mapped_column(UTCDateTime())
    entries: Mapped[int] = mapped_column(Integer)
    revocation_count: Mapped[int] = mapped_column(BigInteger)  # the issuer's counter this CRL covers
    der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("issuer_id", "crl_number"),)


class Notice(Base):
    """One notice per certificate per kind (R6); its email is sent at most once."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"))
    login_id: Mapped[str] = mapped_column(String(64), index=True)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    email_status: Mapped[str] = mapped_column(String(16))  # pending | sent | no_email | failed | cancelled
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_last_error: Mapped[str | None] = mapped_column(Text)
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("serial", "kind"),
        # the sweep's look for emails a lost queue dropped (store/undone_work.py)
        Index(
            "ix_notices_email_pending",
            "id",
            postgresql_where=text("email_status = 'pending'"),
            sqlite_where=text("email_status = 'pending'"),
        ),
    )


class AuditCheckpoint(Base):
    """A signed statement of the audit chain's head (DESIGN §4 "Audit"): the chain held
    `event_count` sealed events, the last one hashing to `head_hash`, at `signed_at`. The
    signature (key `key_id` of the key backend) is over services.audit.checkpoints.signed_payload."""

    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    event_count: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)  # base64 of the DER ECDSA / PKCS#1 v1.5 signature


class Operator(Base):
    """A help-desk person with a console account: argon2 password hash, TOTP secret
    (RFC 6238), lock-out after repeated failures. `session_epoch` is bumped by logout, reset and
    disable: a console session signed under an older epoch is no longer accepted."""

    __tablename__ = "operators"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str] = mapped_column(String(255))  # sealed (pki.sealing), never the seed in clear
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_totp_step: Mapped[int | None] = mapped_column(BigInteger)  # a TOTP code is accepted once
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Approval(Base):
    """Dual control (CA_DUAL_CONTROL): an action one operator asked for and a second, different
    operator must approve within 24 hours (a master user's revocation, a login-method switch)."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # revocation | login_method_switch
    target_id: Mapped[str] = mapped_column(String(128))  # serial or org_id
    params: Mapped[str] = mapped_column(Text)  # JSON: reason, or login_method
    ticket: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | running | approved | rejected | failed
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)  # what the approved action did, or why it failed


class EnrolmentCode(Base):
    """A one-time enrolment code (DESIGN §4c): only its SHA-256 is kept. At most one is
    outstanding per login ID (a new one voids the older ones); used once, in the issuance's
    transaction; voided after too many wrong attempts, a role change, a switch away from
    certificates or a help-desk revocation."""

    __tablename__ = "enrolment_codes"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    login_id: Mapped[str] = mapped_column(ForeignKey("users.login_id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    minted_by: Mapped[str] = mapped_column(String(100))  # the API client, or console:<operator>
    minted_role: Mapped[str] = mapped_column(String(16))  # frontend | operator
    ticket: Mapped[str | None] = mapped_column(String(100))  # the paper ticket of an operator's code
    minted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # wrong codes tried
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    certificate_serial: Mapped[str | None] = mapped_column(String(40))  # what the code enrolled
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str | None] = mapped_column(String(32))


class WebhookEvent(Base):
    """A lifecycle event for the front end, written in the transaction of its change.
    `body` is the exact JSON sent and signed on every attempt; `seq` orders a stream's events."""

    __tablename__ = "webhook_events"
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(80))  # the login ID (or org:<org_id>): delivered in seq order
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)


class WebhookDelivery(Base):
    """One event to one receiver URL: pending until a 2xx (delivered) or until the give-up time
    (failed); `leased_until` marks an attempt in flight (a killed worker's lease just expires)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_seq: Mapped[int] = mapped_column(ForeignKey("webhook_events.seq"))
    stream: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # start of the retry period (reset by a retry)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "ix_webhook_deliveries_pending",
            "stream",
            "url",
            "event_seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_status", "status"),
    )
