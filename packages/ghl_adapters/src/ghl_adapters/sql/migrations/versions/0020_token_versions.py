"""Placeholder: user and location token versions (identity liveness). Filled in by the hardening work.

Revision ID: 0020_token_versions
Revises: 0019_outbox_tenant_keys
Create Date: 2026-12-07
"""

revision = "0020_token_versions"
down_revision = "0019_outbox_tenant_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
