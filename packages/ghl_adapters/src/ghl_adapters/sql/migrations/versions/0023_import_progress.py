"""Durable contact imports: the stored file a worker reads, and what a resumed run needs.

An import uploaded over the API is a job now (`contacts.import`): `source` names its file in the upload
spool (`$GHL_DATA_DIR/spool/imports`), kept until the import ends, and `open_groups` the contacts the
import's identity groups made in the batches committed so far (ghl_core/contacts/import_resume.py). Where
a resumed run starts is `processed`, already saved with each batch. An import with a `source` is never
failed for silence: its job is taken up again when its worker stops.

Revision ID: 0023_import_progress
Revises: 0022_jobs_hardening
Create Date: 2026-12-08
"""

from alembic import op

revision = "0023_import_progress"
down_revision = "0022_jobs_hardening"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE contact_imports ADD COLUMN source text;
ALTER TABLE contact_imports ADD COLUMN open_groups jsonb NOT NULL DEFAULT '[]'::jsonb;
"""

DOWNGRADE = """
ALTER TABLE contact_imports DROP COLUMN open_groups;
ALTER TABLE contact_imports DROP COLUMN source;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
