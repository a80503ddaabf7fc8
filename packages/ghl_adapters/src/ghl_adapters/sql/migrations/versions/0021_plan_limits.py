"""Placeholder: per-plan sending limits. Filled in by the hardening work.

Revision ID: 0021_plan_limits
Revises: 0020_token_versions
Create Date: 2026-12-07
"""

revision = "0021_plan_limits"
down_revision = "0020_token_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
