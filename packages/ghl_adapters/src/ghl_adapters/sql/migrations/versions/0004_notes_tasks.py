"""Notes and tasks on contacts.

Revision ID: 0004_notes_tasks
Revises: 0002_contacts
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004_notes_tasks"
down_revision = "0002_contacts"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE notes (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 50000),
  pinned boolean NOT NULL DEFAULT false,
  author_type text NOT NULL CHECK (author_type IN ('user', 'api_key', 'operator')),
  author_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
-- The contact's note list: pinned first, then newest.
CREATE INDEX notes_contact_idx ON notes (contact_id, pinned DESC, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

CREATE TABLE tasks (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  body text CHECK (length(body) <= 50000),
  due_at timestamptz,
  assignee_id uuid,
  completed boolean NOT NULL DEFAULT false,
  completed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid,
  CHECK (completed = (completed_at IS NOT NULL))
);
-- Every list orders by (due_at NULLS LAST, id); one index per filter the location-wide list offers.
CREATE INDEX tasks_contact_idx ON tasks (contact_id, due_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_location_due_idx ON tasks (location_id, due_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_location_completed_idx ON tasks (location_id, completed, due_at, id)
  WHERE deleted_at IS NULL;
CREATE INDEX tasks_location_assignee_idx ON tasks (location_id, assignee_id, due_at, id)
  WHERE deleted_at IS NULL;
"""

TABLES = {
    "notes": "SELECT, INSERT, UPDATE",
    "tasks": "SELECT, INSERT, UPDATE",
}


def rls_sql() -> str:
    rule = "location_id = ghl_current_location()"
    parts = []
    for table, privileges in TABLES.items():
        parts.append(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
GRANT {privileges} ON {table} TO ghl_app;
CREATE POLICY tenant_read ON {table} FOR SELECT TO ghl_app USING ({rule});
CREATE POLICY tenant_insert ON {table} FOR INSERT TO ghl_app WITH CHECK ({rule});
CREATE POLICY tenant_update ON {table} FOR UPDATE TO ghl_app USING ({rule}) WITH CHECK ({rule});
CREATE POLICY tenant_delete ON {table} FOR DELETE TO ghl_app USING ({rule});
CREATE POLICY operator_all ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
""")
    return "\n".join(parts)


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(rls_sql())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS tasks, notes")
