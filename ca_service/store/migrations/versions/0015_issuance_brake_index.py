"""certificates: index on (org_id, issued_at) for the issuance brake

The per-organisation issuance brake (issue 26, finding 2; services/certificates/issuance_brake.py) counts an
organisation's certificates issued in the last hour inside every issuance's transaction; the
index keeps that a range read of the hour's rows, not a scan of every certificate the
organisation ever had. Additive only.

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_certificates_org_issued_at", "certificates", ["org_id", "issued_at"])


def downgrade() -> None:
    op.drop_index("ix_certificates_org_issued_at", table_name="certificates")
