"""Inbound webhooks: a location's endpoints (their signing secrets encrypted), the raw events received,
stored once per provider event id, and the narrow look-up the unauthenticated receiving path makes.

Revision ID: 0012_inbound_webhooks
Revises: 0011_webhooks
Create Date: 2026-11-26
"""

from alembic import op

revision = "0012_inbound_webhooks"
down_revision = "0011_webhooks"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

SCHEMA = r"""
CREATE TABLE inbound_endpoints (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  secret_ciphertext bytea NOT NULL,
  secret_hint text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  secret_rotated_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX inbound_endpoints_location_idx ON inbound_endpoints (location_id, created_at, id)
  WHERE deleted_at IS NULL;

CREATE TABLE inbound_events (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  endpoint_id uuid REFERENCES inbound_endpoints(id),
  provider text NOT NULL,
  scope text NOT NULL,
  provider_event_id text NOT NULL CHECK (length(provider_event_id) BETWEEN 1 AND 500),
  type text,
  headers jsonb NOT NULL,
  body bytea NOT NULL,
  content_type text,
  status text NOT NULL CHECK (status IN ('received', 'processed', 'ignored', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  received_at timestamptz NOT NULL,
  processed_at timestamptz,
  -- A provider's redelivery of an event id is stored once: the receiving path inserts ON CONFLICT DO
  -- NOTHING, so concurrent deliveries wait for the first and then store nothing.
  CONSTRAINT inbound_events_provider_event_key UNIQUE (provider, scope, provider_event_id)
);
CREATE INDEX inbound_events_location_idx ON inbound_events (location_id, received_at DESC, id DESC);
CREATE INDEX inbound_events_endpoint_idx ON inbound_events (endpoint_id, received_at DESC, id DESC);
"""

TABLES = {
    "inbound_endpoints": "SELECT, INSERT, UPDATE",
    "inbound_events": "SELECT, INSERT, UPDATE",
}

# The receiving request has no credential: this answers the one question it needs (which location, which
# secret, still active?) for one endpoint id, without letting the anonymous scope read the table.
LOOKUP = """
CREATE FUNCTION ghl_inbound_endpoint(p_id uuid)
RETURNS TABLE (location_id uuid, secret_ciphertext bytea, active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT e.location_id, e.secret_ciphertext,
         (e.enabled AND l.deleted_at IS NULL AND a.deleted_at IS NULL)
    FROM inbound_endpoints e
    JOIN locations l ON l.id = e.location_id
    JOIN agencies a ON a.id = l.agency_id
   WHERE e.id = p_id AND e.deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION ghl_inbound_endpoint(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_inbound_endpoint(uuid) TO ghl_app;
"""


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
    op.execute(LOOKUP)


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS ghl_inbound_endpoint(uuid);
        DROP TABLE IF EXISTS inbound_events, inbound_endpoints;
        """
    )
