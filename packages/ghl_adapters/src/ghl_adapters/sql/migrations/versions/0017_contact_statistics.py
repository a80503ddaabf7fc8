"""Planner statistics for contacts on demand: a function the application role may call to ANALYZE the
contacts table, which only its owner may do.

A large import into a table the planner knows nothing about (a fresh installation: never analysed, or a
new location far larger than the table was) gets the location's size wrong by orders of magnitude: the
planner takes the location for one contact and answers the import's e-mail/phone match look-up by walking
every contact of the location, so each batch gets slower than the one before (measured: 23 ms per look-up
after 85,000 rows, growing with the location, against well under a millisecond through the (location,
e-mail) index). Autovacuum analyses eventually, but not within the minutes an import takes. The import
engine calls this function as its location grows (ContactImportService), in its own short transaction.

SECURITY DEFINER runs it with the owner's right to ANALYZE; it takes no argument and touches one fixed
table, so it gives the application role nothing else. A call made while another session analyses the
table waits for it: behind another import's ANALYZE for a fraction of a second; an autovacuum in the way
cancels itself after `deadlock_timeout` (autovacuum gives way to any lock request it blocks).

Revision ID: 0017_contact_statistics
Revises: 0016_contact_birthdays
Create Date: 2026-12-04
"""

from alembic import op

revision = "0017_contact_statistics"
down_revision = "0016_contact_birthdays"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION ghl_analyze_contacts() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
BEGIN
  ANALYZE public.contacts;
END
$$;
REVOKE ALL ON FUNCTION ghl_analyze_contacts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_analyze_contacts() TO ghl_app;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ghl_analyze_contacts()")
