"""Finding contacts: accent- and case-folded search text with a trigram index, indexes for the list's
sorts and filters, and smart lists (saved filters).

Revision ID: 0006_contact_search
Revises: 0005_pipelines
Create Date: 2026-11-25
"""

from alembic import op
from sqlalchemy import text

revision = "0006_contact_search"
down_revision = "0005_pipelines"
branch_labels = None
depends_on = None

# unaccent() is only STABLE (its dictionary could change), so it cannot feed a generated column or an
# index; the wrapper names the dictionary explicitly and promises immutability, the usual recipe.
UNACCENT_WRAPPER = """
CREATE OR REPLACE FUNCTION ghl_unaccent(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
$$ SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, value) $$;
"""
IDENTITY_WRAPPER = """
CREATE OR REPLACE FUNCTION ghl_unaccent(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT value $$;
"""

# Names, e-mail, company and the phone's digits in one folded string: one trigram index then serves
# every kind of search (partial words, accents, phone fragments).
SEARCH_COLUMN = r"""
ALTER TABLE contacts ADD COLUMN search_text text GENERATED ALWAYS AS (
  ghl_unaccent(lower(
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' ||
    coalesce(company_name, '') || ' ' || coalesce(substr(phone, 2), '')
  ))
) STORED;
"""

INDEXES = """
CREATE INDEX contacts_updated_idx ON contacts (location_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_activity_idx ON contacts
  (location_id, coalesce(last_activity_at, '0001-01-01 00:00:00+00'::timestamptz), id)
  WHERE deleted_at IS NULL;
CREATE INDEX contacts_first_name_idx ON contacts (location_id, lower(coalesce(first_name, '')), id)
  WHERE deleted_at IS NULL;
CREATE INDEX contacts_last_name_idx ON contacts (location_id, lower(coalesce(last_name, '')), id)
  WHERE deleted_at IS NULL;
CREATE INDEX contacts_email_sort_idx ON contacts (location_id, coalesce(email, ''), id)
  WHERE deleted_at IS NULL;
-- Not partial on purpose: the planner takes statistics only from non-partial expression indexes, and
-- without them it guesses a phone match at 0.5% of the location and walks the recency index instead.
CREATE INDEX contacts_phone_suffix_idx ON contacts (location_id, reverse(substr(phone, 2)) text_pattern_ops);
CREATE INDEX contacts_assigned_idx ON contacts (location_id, assigned_user_id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_custom_fields_idx ON contacts USING gin (custom_fields jsonb_path_ops);
"""

TRIGRAM_INDEX = """
CREATE INDEX contacts_search_trgm_idx ON contacts USING gin (search_text gin_trgm_ops);
"""

# Row-level security runs no operator that is not LEAKPROOF (LIKE, &&, @>) before its policy, so through
# RLS the trigram, tag and jsonb GIN indexes are never used and a selective search scans the table. This
# view, owned by the migrating role, filters on the same tenant rule as the policy and lets the planner
# use them. The application may only read it, and reads only ids from it (the rows themselves come from
# `contacts`, under RLS); the searches it runs are built from a fixed set of operators whose only inputs
# are bound parameters and none of which can raise on another tenant's data.
SCOPED_VIEW = """
CREATE VIEW contacts_scoped AS
SELECT id, location_id, first_name, last_name, email, phone, company_name, address1, city, state, postal_code,
       country, website, timezone, date_of_birth, gender, source, assigned_user_id, dnd, dnd_channels, tags,
       custom_fields, last_activity_at, created_at, updated_at, deleted_at, erased_at, search_text
  FROM contacts
 WHERE location_id = ghl_current_location();
REVOKE ALL ON contacts_scoped FROM PUBLIC;
GRANT SELECT ON contacts_scoped TO ghl_app;
"""

SMART_LISTS = """
CREATE TABLE smart_lists (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  query text,
  filter jsonb,
  sort jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE UNIQUE INDEX smart_lists_name_key ON smart_lists (location_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX smart_lists_recent_idx ON smart_lists (location_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;
ALTER TABLE smart_lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE smart_lists FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON smart_lists TO ghl_app;
CREATE POLICY tenant_read ON smart_lists FOR SELECT TO ghl_app USING (location_id = ghl_current_location());
CREATE POLICY tenant_insert ON smart_lists FOR INSERT TO ghl_app
  WITH CHECK (location_id = ghl_current_location());
CREATE POLICY tenant_update ON smart_lists FOR UPDATE TO ghl_app
  USING (location_id = ghl_current_location()) WITH CHECK (location_id = ghl_current_location());
CREATE POLICY tenant_delete ON smart_lists FOR DELETE TO ghl_app USING (location_id = ghl_current_location());
CREATE POLICY operator_all ON smart_lists FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
"""


def _ensure_extension(name: str) -> str | None:
    """Creates the extension when the server ships it; returns the schema it lives in, or None."""
    bind = op.get_bind()
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}
    ).first()
    if available is None:
        return None
    op.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
    row = bind.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = :n"
        ),
        {"n": name},
    ).first()
    return str(row[0]) if row else None


def upgrade() -> None:
    unaccent_schema = _ensure_extension("unaccent")
    trigram_schema = _ensure_extension("pg_trgm")
    if unaccent_schema:
        op.execute(UNACCENT_WRAPPER.format(schema=f'"{unaccent_schema}"'))
    else:
        op.execute(IDENTITY_WRAPPER)
    op.execute(SEARCH_COLUMN)
    op.execute(INDEXES)
    if trigram_schema:
        op.execute(TRIGRAM_INDEX)
    op.execute(SCOPED_VIEW)
    op.execute(SMART_LISTS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS smart_lists")
    op.execute("DROP VIEW IF EXISTS contacts_scoped")
    op.execute(
        "DROP INDEX IF EXISTS contacts_search_trgm_idx, contacts_custom_fields_idx, contacts_assigned_idx, "
        "contacts_phone_suffix_idx, "
        "contacts_email_sort_idx, contacts_last_name_idx, contacts_first_name_idx, contacts_activity_idx, "
        "contacts_updated_idx"
    )
    op.execute("ALTER TABLE contacts DROP COLUMN IF EXISTS search_text")
    op.execute("DROP FUNCTION IF EXISTS ghl_unaccent(text)")
