"""Contacts, the contact settings of a location (duplicate rule), the tag list and custom field definitions.

Revision ID: 0002_contacts
Revises: 0001_foundation
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002_contacts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE contact_settings (
  location_id uuid PRIMARY KEY REFERENCES locations(id),
  allow_duplicates boolean NOT NULL DEFAULT false,
  duplicate_priority text NOT NULL DEFAULT 'email' CHECK (duplicate_priority IN ('email', 'phone')),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  first_name text,
  last_name text,
  email text CHECK (email = lower(email)),
  phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
  company_name text,
  address1 text,
  city text,
  state text,
  postal_code text,
  country text,
  website text,
  timezone text,
  date_of_birth date,
  gender text,
  source text,
  attribution jsonb NOT NULL DEFAULT '{}'::jsonb,
  assigned_user_id uuid,
  dnd boolean NOT NULL DEFAULT false,
  dnd_channels jsonb NOT NULL DEFAULT '{}'::jsonb,
  tags text[] NOT NULL DEFAULT '{}',
  custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_activity_at timestamptz,
  -- Set to the e-mail / phone only while the location forbids duplicates: the unique indexes below
  -- then make a second live contact with the same identifier impossible, even for racing requests.
  email_key text,
  phone_key text,
  merged_into uuid REFERENCES contacts(id),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  erased_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (location_id, email_key)
  WHERE email_key IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX contacts_phone_key ON contacts (location_id, phone_key)
  WHERE phone_key IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX contacts_email_idx ON contacts (location_id, email) WHERE deleted_at IS NULL;
CREATE INDEX contacts_phone_idx ON contacts (location_id, phone) WHERE deleted_at IS NULL;
CREATE INDEX contacts_recent_idx ON contacts (location_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);

CREATE TABLE tags (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  UNIQUE (location_id, name)
);

CREATE TABLE custom_field_definitions (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,63}$'),
  label text NOT NULL,
  type text NOT NULL CHECK (type IN ('text', 'large_text', 'number', 'money', 'phone', 'email', 'date',
                                     'checkbox', 'single_option', 'multiple_options')),
  options jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE UNIQUE INDEX custom_field_definitions_key ON custom_field_definitions (location_id, key)
  WHERE deleted_at IS NULL;
"""

TABLES = {
    "contact_settings": "SELECT, INSERT, UPDATE",
    "contacts": "SELECT, INSERT, UPDATE",
    "tags": "SELECT, INSERT, UPDATE, DELETE",
    "custom_field_definitions": "SELECT, INSERT, UPDATE",
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
    op.execute("DROP TABLE IF EXISTS custom_field_definitions, tags, contacts, contact_settings")
