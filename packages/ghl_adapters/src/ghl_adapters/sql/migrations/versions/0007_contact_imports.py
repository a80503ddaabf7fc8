"""Contact imports: each import's options, progress and (capped) error report.

Revision ID: 0007_contact_imports
Revises: 0006_contact_search
Create Date: 2026-11-25
"""

from alembic import op

revision = "0007_contact_imports"
down_revision = "0006_contact_search"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE contact_imports (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
  mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
  options jsonb NOT NULL DEFAULT '{}'::jsonb,
  processed integer NOT NULL DEFAULT 0,
  created integer NOT NULL DEFAULT 0,
  updated integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  -- [{"line": 7, "reason": "..."}], capped by the application; the counters keep counting past the cap.
  errors jsonb NOT NULL DEFAULT '[]'::jsonb,
  failure text,
  runner text,
  heartbeat_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX contact_imports_location_idx ON contact_imports (location_id, created_at DESC);
CREATE INDEX contact_imports_unfinished_idx ON contact_imports (heartbeat_at)
  WHERE status IN ('queued', 'running');
"""

RLS = r"""
ALTER TABLE contact_imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_imports FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON contact_imports TO ghl_app;
CREATE POLICY tenant_read ON contact_imports FOR SELECT TO ghl_app
  USING (location_id = ghl_current_location());
CREATE POLICY tenant_insert ON contact_imports FOR INSERT TO ghl_app
  WITH CHECK (location_id = ghl_current_location());
CREATE POLICY tenant_update ON contact_imports FOR UPDATE TO ghl_app
  USING (location_id = ghl_current_location()) WITH CHECK (location_id = ghl_current_location());
CREATE POLICY operator_all ON contact_imports FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(RLS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS contact_imports")
