"""Placeholder: workflow and job hardening. Filled in by the hardening work.

Revision ID: 0023_jobs_hardening
Revises: 0022_import_hardening
Create Date: 2026-12-07
"""

revision = "0023_jobs_hardening"
down_revision = "0022_import_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
