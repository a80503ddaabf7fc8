"""Conversations: messaging provider configurations (sealed, per agency with per-location overrides), a
location's messaging settings, conversations and their messages. The messages table is also the send
ledger: a message's cause is unique per location and its provider call is claimed before it is made.

Revision ID: 0013_conversations
Revises: 0012_inbound_webhooks
Create Date: 2026-11-25
"""

from alembic import op

revision = "0013_conversations"
down_revision = "0012_inbound_webhooks"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

SCHEMA = r"""
CREATE TABLE messaging_providers (
  id uuid PRIMARY KEY,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  location_id uuid REFERENCES locations(id),  -- NULL: the agency's default for its locations
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  kind text NOT NULL CHECK (kind IN ('twilio', 'sendgrid', 'smtp')),
  config_ciphertext bytea NOT NULL,
  summary jsonb NOT NULL,  -- what may be shown: sender, account hint; never a credential
  inbound_token text NOT NULL,  -- the secret path segment of URLs that providers cannot sign
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  CONSTRAINT messaging_providers_one UNIQUE NULLS NOT DISTINCT (agency_id, location_id, channel)
);

CREATE TABLE messaging_settings (
  location_id uuid PRIMARY KEY REFERENCES locations(id),
  quiet_start time,
  quiet_end time,
  help_text text,
  stop_text text,
  start_text text,
  sms_per_second integer CHECK (sms_per_second BETWEEN 1 AND 10000),
  email_per_second integer CHECK (email_per_second BETWEEN 1 AND 10000),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid
);

CREATE TABLE conversations (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  assigned_user_id uuid,
  unread_count integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
  last_message_at timestamptz,
  last_message_preview text,
  last_direction text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT conversations_one_per_channel UNIQUE (location_id, contact_id, channel)
);
CREATE INDEX conversations_newest_idx ON conversations (location_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_unread_idx ON conversations (location_id, last_message_at DESC, id DESC)
  WHERE unread_count > 0;

CREATE TABLE messages (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  conversation_id uuid NOT NULL REFERENCES conversations(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  status text NOT NULL CHECK (status IN
    ('scheduled', 'queued', 'sent', 'delivered', 'failed', 'undelivered', 'read', 'received')),
  source text NOT NULL CHECK (source IN ('manual', 'workflow', 'campaign', 'api', 'system', 'provider')),
  marketing boolean NOT NULL DEFAULT false,
  cause text,  -- the send ledger key: one message per (location, cause)
  subject text,
  body text NOT NULL DEFAULT '',
  html text,
  attachments jsonb NOT NULL DEFAULT '[]',
  sender text,
  recipient text,
  provider text,
  provider_message_id text,
  rfc_message_id text,
  error_code text,
  error_message text,
  segments integer,
  encoding text,
  send_at timestamptz,
  claimed_at timestamptz,  -- the provider call began; set and committed before it is made
  attempts integer NOT NULL DEFAULT 0,
  sent_at timestamptz,
  delivered_at timestamptz,
  read_at timestamptz,
  failed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  CONSTRAINT messages_cause_once UNIQUE (location_id, cause)
);
CREATE INDEX messages_thread_idx ON messages (conversation_id, created_at DESC, id DESC);
CREATE INDEX messages_provider_idx ON messages (location_id, provider_message_id)
  WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_rfc_idx ON messages (location_id, rfc_message_id) WHERE rfc_message_id IS NOT NULL;
CREATE INDEX messages_outbox_idx ON messages (location_id, sent_at DESC, id DESC) WHERE provider = 'outbox';
"""

LOCATION_TABLES = {
    "messaging_settings": "SELECT, INSERT, UPDATE",
    "conversations": "SELECT, INSERT, UPDATE",
    "messages": "SELECT, INSERT, UPDATE",
}

# Location rows belong to their location; agency defaults (location_id NULL) to the agency scope.
PROVIDERS_RLS = f"""
ALTER TABLE messaging_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging_providers FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON messaging_providers TO {APP_ROLE};
CREATE POLICY tenant_all ON messaging_providers FOR ALL TO {APP_ROLE}
  USING (location_id = ghl_current_location()
         OR (location_id IS NULL AND agency_id = ghl_current_agency()))
  WITH CHECK (location_id = ghl_current_location()
         OR (location_id IS NULL AND agency_id = ghl_current_agency()));
CREATE POLICY operator_all ON messaging_providers FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
"""

# The configuration a location sends with: its own, else its agency's default, else none (the outbox).
# Used by senders in a location scope and by the unauthenticated provider callbacks (to find the key a
# callback is signed with); it answers for one live location only.
LOOKUP = """
CREATE FUNCTION ghl_messaging_provider(p_location uuid, p_channel text)
RETURNS TABLE (kind text, config_ciphertext bytea, inbound_token text, agency_default boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT p.kind, p.config_ciphertext, p.inbound_token, p.location_id IS NULL
    FROM locations l
    JOIN agencies a ON a.id = l.agency_id AND a.deleted_at IS NULL
    JOIN messaging_providers p ON p.agency_id = l.agency_id
         AND (p.location_id = l.id OR p.location_id IS NULL) AND p.channel = p_channel
   WHERE l.id = p_location AND l.deleted_at IS NULL
   ORDER BY p.location_id IS NULL
   LIMIT 1
$$;
REVOKE ALL ON FUNCTION ghl_messaging_provider(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_messaging_provider(uuid, text) TO ghl_app;
"""


def rls_sql() -> str:
    rule = "location_id = ghl_current_location()"
    parts = []
    for table, privileges in LOCATION_TABLES.items():
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
    op.execute(PROVIDERS_RLS)
    op.execute(LOOKUP)


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS ghl_messaging_provider(uuid, text);
        DROP TABLE IF EXISTS messages, conversations, messaging_settings, messaging_providers;
        """
    )
