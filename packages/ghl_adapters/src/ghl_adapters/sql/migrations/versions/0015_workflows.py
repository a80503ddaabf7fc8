"""Workflows: the stored definitions (a draft being edited and its published versions, immutable once
published), the enrollments of contacts in a version, and the execution ledger (one row per visit of a
step, keyed by enrollment, step and tick, so a redelivered step job never runs a side effect twice).

Revision ID: 0015_workflows
Revises: 0014_campaigns
Create Date: 2026-12-04
"""

from alembic import op

revision = "0015_workflows"
down_revision = "0014_campaigns"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

SCHEMA = r"""
CREATE TABLE workflows (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('draft', 'published', 'paused')),
  draft jsonb NOT NULL DEFAULT '{}',
  version integer NOT NULL DEFAULT 0 CHECK (version >= 0),
  hook_token_hash text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX workflows_location_idx ON workflows (location_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

CREATE TABLE workflow_versions (
  workflow_id uuid NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version integer NOT NULL CHECK (version >= 1),
  location_id uuid NOT NULL REFERENCES locations(id),
  definition jsonb NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now(),
  published_by uuid,
  PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_enrollments (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  workflow_id uuid NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version integer NOT NULL,
  contact_id uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('active', 'waiting', 'completed', 'goal', 'stopped', 'failed')),
  trigger text NOT NULL,
  step_id text,
  tick integer NOT NULL DEFAULT 0 CHECK (tick >= 0),
  wake_at timestamptz,
  waiting_for jsonb,
  cause text,
  opportunity_id uuid,
  outputs jsonb NOT NULL DEFAULT '{}',
  -- Set by add_exclusive: only such enrollments are held to "one running per contact and workflow".
  exclusive boolean NOT NULL DEFAULT false,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  reason text
);
-- A redelivered trigger (same cause) never enrolls twice.
CREATE UNIQUE INDEX workflow_enrollments_cause_key ON workflow_enrollments (workflow_id, cause)
  WHERE cause IS NOT NULL;
-- Concurrent enrollments of one contact never make two running ones.
CREATE UNIQUE INDEX workflow_enrollments_exclusive_key ON workflow_enrollments (workflow_id, contact_id)
  WHERE exclusive AND status IN ('active', 'waiting');
CREATE INDEX workflow_enrollments_contact_idx ON workflow_enrollments (location_id, contact_id)
  WHERE status IN ('active', 'waiting');
CREATE INDEX workflow_enrollments_list_idx ON workflow_enrollments (workflow_id, started_at DESC, id DESC);
CREATE INDEX workflow_enrollments_status_idx ON workflow_enrollments (workflow_id, status);

CREATE TABLE workflow_step_runs (
  enrollment_id uuid NOT NULL REFERENCES workflow_enrollments(id) ON DELETE CASCADE,
  step_id text NOT NULL,
  tick integer NOT NULL,
  location_id uuid NOT NULL REFERENCES locations(id),
  workflow_id uuid NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  type text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'done', 'skipped', 'waiting', 'failed')),
  outcome text NOT NULL DEFAULT '',
  detail text NOT NULL DEFAULT '',
  output jsonb,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (enrollment_id, step_id, tick)
);
CREATE INDEX workflow_step_runs_step_idx ON workflow_step_runs (workflow_id, step_id, status);
"""

# Published versions are immutable; nothing is hard-deleted by the application (soft delete, stop).
TABLES = {
    "workflows": "SELECT, INSERT, UPDATE",
    "workflow_versions": "SELECT, INSERT",
    "workflow_enrollments": "SELECT, INSERT, UPDATE",
    "workflow_step_runs": "SELECT, INSERT, UPDATE",
}


def rls_sql() -> str:
    rule = "location_id = ghl_current_location()"
    parts = []
    for table, privileges in TABLES.items():
        parts.append(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
GRANT {privileges} ON {table} TO {APP_ROLE};
CREATE POLICY tenant_read ON {table} FOR SELECT TO {APP_ROLE} USING ({rule});
CREATE POLICY tenant_insert ON {table} FOR INSERT TO {APP_ROLE} WITH CHECK ({rule});
CREATE POLICY tenant_update ON {table} FOR UPDATE TO {APP_ROLE} USING ({rule}) WITH CHECK ({rule});
CREATE POLICY operator_all ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
""")
    return "\n".join(parts)


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(rls_sql())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS workflow_step_runs, workflow_enrollments, workflow_versions, workflows")
