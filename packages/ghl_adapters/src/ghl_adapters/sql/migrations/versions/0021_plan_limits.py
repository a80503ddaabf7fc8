"""Per-plan sending limits: each location's outbound messages counted per day, in its own time zone.

A plan bounds how many messages a location sends a day (ghl_core.tenancy.plans). Counting the messages
ledger at every send would scan up to a day's messages each time, so the count is kept beside it: one row
per (location, local day). A send takes its share from the row before its messages are written (a single
send in its own transaction; a campaign batch in a short transaction of its own, handing back what it did
not use after it), so concurrent senders never pass the limit together. Rows of past days are
small (one a location a day) and kept: they are the location's daily history.

A campaign gains a `note`: why it waits (today's messages are spent: it goes on at the location's next
midnight) or why it went back to draft (its audience grew past the plan's largest when it was to start).

The API key cap needs no schema: creators of a location's keys are serialised by an advisory lock while
they count its live keys.

Revision ID: 0021_plan_limits
Revises: 0020_token_versions
Create Date: 2026-12-07
"""

from alembic import op

revision = "0021_plan_limits"
down_revision = "0020_token_versions"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"
RULE = "location_id = ghl_current_location()"

SCHEMA = f"""
CREATE TABLE message_volume (
  location_id uuid NOT NULL REFERENCES locations(id),
  day date NOT NULL,  -- the location's local date
  sent integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
  PRIMARY KEY (location_id, day)
);

ALTER TABLE message_volume ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_volume FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON message_volume TO {APP_ROLE};
CREATE POLICY tenant_read ON message_volume FOR SELECT TO {APP_ROLE} USING ({RULE});
CREATE POLICY tenant_insert ON message_volume FOR INSERT TO {APP_ROLE} WITH CHECK ({RULE});
CREATE POLICY tenant_update ON message_volume FOR UPDATE TO {APP_ROLE} USING ({RULE}) WITH CHECK ({RULE});
CREATE POLICY operator_all ON message_volume FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE campaigns ADD COLUMN note text;
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("ALTER TABLE campaigns DROP COLUMN IF EXISTS note; DROP TABLE IF EXISTS message_volume;")
