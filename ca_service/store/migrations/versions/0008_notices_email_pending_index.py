"""notices: partial index on the emails still to send

The outbox sweep looks every few seconds for notices whose email is still pending (a job a
restarted Redis lost, issue 18); the partial index keeps that a lookup among the few pending
rows, not a scan of every notice ever made.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING = "email_status = 'pending'"


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notices_email_pending", ["id"], unique=False, postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING)
        )


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_email_pending", postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
