"""Placeholder: import hardening. Filled in by the hardening work.

Revision ID: 0022_import_hardening
Revises: 0021_plan_limits
Create Date: 2026-12-07
"""

revision = "0022_import_hardening"
down_revision = "0021_plan_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
