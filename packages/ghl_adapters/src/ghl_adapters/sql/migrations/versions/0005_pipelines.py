"""Pipelines with ordered stages, opportunities and their move history.

Revision ID: 0005_pipelines
Revises: 0004_notes_tasks
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005_pipelines"
down_revision = "0004_notes_tasks"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE pipelines (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE UNIQUE INDEX pipelines_name_key ON pipelines (location_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX pipelines_location_idx ON pipelines (location_id, created_at, id) WHERE deleted_at IS NULL;

-- A deleted stage is kept (the move history names it) with no position. The unique position is
-- checked at the end of each statement, so one UPDATE can renumber the stages.
CREATE TABLE pipeline_stages (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  pipeline_id uuid NOT NULL REFERENCES pipelines(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  position integer CHECK (position >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CHECK ((deleted_at IS NULL) = (position IS NOT NULL)),
  CONSTRAINT pipeline_stages_position_key UNIQUE (pipeline_id, position) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE UNIQUE INDEX pipeline_stages_name_key ON pipeline_stages (pipeline_id, lower(name))
  WHERE deleted_at IS NULL;

CREATE TABLE opportunities (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  pipeline_id uuid NOT NULL REFERENCES pipelines(id),
  stage_id uuid NOT NULL REFERENCES pipeline_stages(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  value_amount bigint CHECK (value_amount >= 0),
  value_currency char(3) CHECK (value_currency ~ '^[A-Z]{3}$'),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost', 'abandoned')),
  lost_reason text,
  assigned_user_id uuid,
  source text,
  custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_status_change_at timestamptz NOT NULL DEFAULT now(),
  last_stage_change_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid,
  CHECK ((value_amount IS NULL) = (value_currency IS NULL)),
  CHECK (lost_reason IS NULL OR status = 'lost')
);
-- The board: a stage's column, filtered by status or not, most recently updated first.
CREATE INDEX opportunities_board_status_idx
  ON opportunities (location_id, stage_id, status, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_board_idx
  ON opportunities (location_id, stage_id, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_recent_idx
  ON opportunities (location_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_pipeline_idx ON opportunities (pipeline_id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_contact_idx ON opportunities (contact_id);
CREATE INDEX opportunities_assigned_idx
  ON opportunities (location_id, assigned_user_id) WHERE deleted_at IS NULL;

-- seq orders the moves of one opportunity: they are written one at a time under its row lock.
CREATE TABLE opportunity_moves (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  location_id uuid NOT NULL REFERENCES locations(id),
  opportunity_id uuid NOT NULL REFERENCES opportunities(id),
  from_stage_id uuid REFERENCES pipeline_stages(id),
  to_stage_id uuid NOT NULL REFERENCES pipeline_stages(id),
  from_status text CHECK (from_status IN ('open', 'won', 'lost', 'abandoned')),
  to_status text NOT NULL CHECK (to_status IN ('open', 'won', 'lost', 'abandoned')),
  moved_at timestamptz NOT NULL,
  moved_by uuid,
  moved_by_type text NOT NULL
);
CREATE INDEX opportunity_moves_opportunity_idx ON opportunity_moves (opportunity_id, seq);
"""

# The move history is append-only for the application.
TABLES = {
    "pipelines": "SELECT, INSERT, UPDATE",
    "pipeline_stages": "SELECT, INSERT, UPDATE",
    "opportunities": "SELECT, INSERT, UPDATE",
    "opportunity_moves": "SELECT, INSERT",
}


def rls_sql() -> str:
    rule = "location_id = ghl_current_location()"
    parts = []
    for table, privileges in TABLES.items():
        writes = (
            f"""
CREATE POLICY tenant_update ON {table} FOR UPDATE TO ghl_app USING ({rule}) WITH CHECK ({rule});"""
            if "UPDATE" in privileges
            else ""
        )
        parts.append(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
GRANT {privileges} ON {table} TO ghl_app;
CREATE POLICY tenant_read ON {table} FOR SELECT TO ghl_app USING ({rule});
CREATE POLICY tenant_insert ON {table} FOR INSERT TO ghl_app WITH CHECK ({rule});{writes}
CREATE POLICY operator_all ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
""")
    return "\n".join(parts)


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(rls_sql())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS opportunity_moves, opportunities, pipeline_stages, pipelines")
