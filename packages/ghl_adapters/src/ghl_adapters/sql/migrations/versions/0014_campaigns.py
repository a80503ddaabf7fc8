"""Templates and campaigns: reusable SMS/email templates; campaigns with their frozen audience (one row
per recipient, each sent at most once through the messages ledger) and engagement events (opens,
clicks, replies, unsubscribes, bounces) counted once per recipient.

Revision ID: 0014_campaigns
Revises: 0013_conversations
Create Date: 2026-11-25
"""

from alembic import op

revision = "0014_campaigns"
down_revision = "0013_conversations"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

SCHEMA = r"""
CREATE TABLE message_templates (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  subject text,
  body text NOT NULL DEFAULT '',
  html text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX message_templates_location_idx ON message_templates (location_id, created_at, id)
  WHERE deleted_at IS NULL;

CREATE TABLE campaigns (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  status text NOT NULL CHECK (status IN
    ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')),
  template_id uuid REFERENCES message_templates(id),
  subject text,
  body text NOT NULL DEFAULT '',
  html text,
  audience jsonb NOT NULL,
  scheduled_at timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  recipients integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX campaigns_location_idx ON campaigns (location_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

CREATE TABLE campaign_recipients (
  campaign_id uuid NOT NULL REFERENCES campaigns(id),
  contact_id uuid NOT NULL REFERENCES contacts(id),
  location_id uuid NOT NULL REFERENCES locations(id),
  position integer NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'sending', 'done', 'skipped', 'cancelled')),
  message_id uuid REFERENCES messages(id),
  reason text,
  PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_todo_idx ON campaign_recipients (campaign_id, position)
  WHERE status IN ('pending', 'sending');

CREATE TABLE campaign_events (
  campaign_id uuid NOT NULL REFERENCES campaigns(id),
  contact_id uuid NOT NULL,
  location_id uuid NOT NULL REFERENCES locations(id),
  kind text NOT NULL CHECK (kind IN ('open', 'click', 'reply', 'unsubscribe', 'bounce')),
  first_at timestamptz NOT NULL,
  count integer NOT NULL DEFAULT 1,
  PRIMARY KEY (campaign_id, contact_id, kind)
);

ALTER TABLE messages ADD COLUMN campaign_id uuid REFERENCES campaigns(id);
CREATE INDEX messages_campaign_idx ON messages (campaign_id, status) WHERE campaign_id IS NOT NULL;
-- The latest outbound campaign message of a conversation, to credit a reply to its campaign.
CREATE INDEX messages_conversation_campaign_idx ON messages (conversation_id, created_at DESC)
  WHERE campaign_id IS NOT NULL;
"""

TABLES = {
    "message_templates": "SELECT, INSERT, UPDATE",
    "campaigns": "SELECT, INSERT, UPDATE",
    "campaign_recipients": "SELECT, INSERT, UPDATE",
    "campaign_events": "SELECT, INSERT, UPDATE",
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
    op.execute(
        """
        DROP INDEX IF EXISTS messages_conversation_campaign_idx;
        DROP INDEX IF EXISTS messages_campaign_idx;
        ALTER TABLE messages DROP COLUMN IF EXISTS campaign_id;
        DROP TABLE IF EXISTS campaign_events, campaign_recipients, campaigns, message_templates;
        """
    )
