"""Outbound webhooks: subscriptions (signing secret sealed at rest), one delivery per subscription and
event, and the attempts of each delivery.

Revision ID: 0011_webhooks
Revises: 0010_jobs
Create Date: 2026-11-25
"""

from alembic import op

revision = "0011_webhooks"
down_revision = "0010_jobs"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE webhook_subscriptions (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  description text CHECK (length(description) <= 500),
  event_types text[] NOT NULL CHECK (cardinality(event_types) >= 1),
  active boolean NOT NULL DEFAULT true,
  disabled_reason text,
  disabled_at timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  secret_ciphertext bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX webhook_subscriptions_location_idx ON webhook_subscriptions (location_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

-- No foreign key to domain_events: the log outlives any pruning of old events.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  subscription_id uuid NOT NULL REFERENCES webhook_subscriptions(id),
  event_id uuid NOT NULL,
  event_type text NOT NULL,
  entity_id uuid NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- A fan-out run again on the same events creates no second delivery (ON CONFLICT DO NOTHING).
  CONSTRAINT webhook_deliveries_event_key UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (subscription_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_status_idx ON webhook_deliveries (subscription_id, status, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  delivery_id uuid NOT NULL REFERENCES webhook_deliveries(id),
  number integer NOT NULL CHECK (number >= 1),
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  status_code integer,
  error text,
  response_excerpt text,
  CONSTRAINT webhook_attempts_number_key UNIQUE (delivery_id, number)
);
"""

# The attempts are an append-only log for the application.
TABLES = {
    "webhook_subscriptions": "SELECT, INSERT, UPDATE",
    "webhook_deliveries": "SELECT, INSERT, UPDATE",
    "webhook_attempts": "SELECT, INSERT",
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
    op.execute("DROP TABLE IF EXISTS webhook_attempts, webhook_deliveries, webhook_subscriptions")
