"""Full-text search on contacts: a generated `tsvector` of the folded names, e-mail and company with a GIN
index, so word and word-prefix searches are indexed on every server, with or without `pg_trgm`.

Revision ID: 0009_contact_fulltext
Revises: 0008_contact_erase
Create Date: 2026-11-25
"""

from alembic import op

revision = "0009_contact_fulltext"
down_revision = "0008_contact_erase"
branch_labels = None
depends_on = None

# The text is folded like `search_text` (lower-cased, then `ghl_unaccent`), and every run of ASCII
# punctuation becomes a space before the 'simple' parser sees it: an e-mail is then its words
# ("jane.doe+x@acme-widgets.com" -> jane doe x acme widgets com), as are "O'Brien" and "Jean-Luc". The
# adapter splits a query on the same characters (ghl_adapters.sql.contact_search.PUNCTUATION).
# 'simple' neither stems nor drops stop words: names are not English prose.
SEARCH_VECTOR = r"""
ALTER TABLE contacts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
  to_tsvector('simple'::regconfig, regexp_replace(
    ghl_unaccent(lower(
      coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' ||
      coalesce(company_name, '')
    )),
    '[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]+', ' ', 'g'
  ))
) STORED;
CREATE INDEX contacts_search_vector_idx ON contacts USING gin (search_vector);
"""

VIEW_COLUMNS = """id, location_id, first_name, last_name, email, phone, company_name, address1, city, state,
       postal_code, country, website, timezone, date_of_birth, gender, source, assigned_user_id, dnd,
       dnd_channels, tags, custom_fields, last_activity_at, created_at, updated_at, deleted_at, erased_at,
       search_text"""

# The view of migration 0006 (see there why searches read it), with the new column appended.
SCOPED_VIEW = """
CREATE OR REPLACE VIEW contacts_scoped AS
SELECT {columns}
  FROM contacts
 WHERE location_id = ghl_current_location();
REVOKE ALL ON contacts_scoped FROM PUBLIC;
GRANT SELECT ON contacts_scoped TO ghl_app;
"""


def upgrade() -> None:
    op.execute(SEARCH_VECTOR)
    op.execute(SCOPED_VIEW.format(columns=VIEW_COLUMNS + ", search_vector"))


def downgrade() -> None:
    # A view cannot lose a column in place.
    op.execute("DROP VIEW IF EXISTS contacts_scoped")
    op.execute(SCOPED_VIEW.format(columns=VIEW_COLUMNS).replace("CREATE OR REPLACE VIEW", "CREATE VIEW"))
    op.execute("DROP INDEX IF EXISTS contacts_search_vector_idx")
    op.execute("ALTER TABLE contacts DROP COLUMN IF EXISTS search_vector")
