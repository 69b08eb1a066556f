"""initial schema: registry, CAs, certificates, clients, audit, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ca_service.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_api_clients_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_clients_token_hash")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("occurred_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("client_name", sa.String(length=100), nullable=True),
        sa.Column("acting_login_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("chain_index", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("chain_index", name=op.f("uq_audit_events_chain_index")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_unsealed",
            ["id"],
            unique=False,
            postgresql_where=sa.text("chain_index IS NULL"),
            sqlite_where=sa.text("chain_index IS NULL"),
        )

    op.create_table(
        "certificate_authorities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("ski", sa.String(length=128), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column("key_algorithm", sa.String(length=16), nullable=False),
        sa.Column("not_before", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_after", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("revoked_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["certificate_authorities.id"],
            name=op.f("fk_certificate_authorities_parent_id_certificate_authorities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_authorities")),
        sa.UniqueConstraint("name", name=op.f("uq_certificate_authorities_name")),
    )
    with op.batch_alter_table("certificate_authorities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificate_authorities_kind"), ["kind"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("login_method", sa.String(length=16), nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("dispatched_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        )

    op.create_table(
        "users",
        sa.Column("login_id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.org_id"], name=op.f("fk_users_org_id_organizations")),
        sa.PrimaryKeyConstraint("login_id", name=op.f("pk_users")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_org_id"), ["org_id"], unique=False)

    op.create_table(
        "certificates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("login_id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("current_login_id", sa.String(length=64), nullable=True),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_description", sa.String(length=32), nullable=False),
        sa.Column("issued_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_before", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_after", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("renewal_of", sa.String(length=40), nullable=True),
        sa.Column("superseded_by", sa.String(length=40), nullable=True),
        sa.Column("revoked_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("revocation_ticket", sa.String(length=100), nullable=True),
        sa.Column("revoked_by_client", sa.String(length=100), nullable=True),
        sa.Column("revoked_by_login_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authorities.id"], name=op.f("fk_certificates_issuer_id_certificate_authorities")
        ),
        sa.ForeignKeyConstraint(["login_id"], ["users.login_id"], name=op.f("fk_certificates_login_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("current_login_id", name=op.f("uq_certificates_current_login_id")),
        sa.UniqueConstraint("serial", name=op.f("uq_certificates_serial")),
        sa.UniqueConstraint("spki_sha256", name=op.f("uq_certificates_spki_sha256")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_login_id"), ["login_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_not_after"), ["not_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_certificates_revoked",
            ["issuer_id", "revoked_at"],
            unique=False,
            postgresql_where=sa.text("revoked_at IS NOT NULL"),
            sqlite_where=sa.text("revoked_at IS NOT NULL"),
        )


def downgrade() -> None:

    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_certificates_revoked",
            postgresql_where=sa.text("revoked_at IS NOT NULL"),
            sqlite_where=sa.text("revoked_at IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_certificates_org_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_not_after"))
        batch_op.drop_index(batch_op.f("ix_certificates_login_id"))

    op.drop_table("certificates")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_org_id"))

    op.drop_table("users")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_pending", postgresql_where=sa.text("dispatched_at IS NULL"), sqlite_where=sa.text("dispatched_at IS NULL")
        )

    op.drop_table("outbox")
    op.drop_table("organizations")
    with op.batch_alter_table("certificate_authorities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_authorities_kind"))

    op.drop_table("certificate_authorities")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_audit_events_unsealed",
            postgresql_where=sa.text("chain_index IS NULL"),
            sqlite_where=sa.text("chain_index IS NULL"),
        )

    op.drop_table("audit_events")
    op.drop_table("api_clients")
