"""Birthday reminders: an expression index on the month and day of live contacts' dates of birth, so the
periodic reminder job finds a location's birthdays of a given day without reading all its contacts.

The query (SqlContactRepository.ids_with_birthday) repeats these expressions exactly, or the planner
cannot match it to the index. A custom date field has no such index: its values live under arbitrary
keys of `custom_fields`, and an expression index per key cannot be declared ahead of the fields; that
lookup uses the `custom_fields` GIN index of migration 0006 instead (a containment match).

Revision ID: 0016_contact_birthdays
Revises: 0015_workflows
Create Date: 2026-12-04
"""

from alembic import op

revision = "0016_contact_birthdays"
down_revision = "0015_workflows"
branch_labels = None
depends_on = None

# EXTRACT on a `date` is IMMUTABLE (PostgreSQL 14+), so it may index.
INDEX = """
CREATE INDEX contacts_birthday_idx ON contacts
  (location_id, (EXTRACT(MONTH FROM date_of_birth)), (EXTRACT(DAY FROM date_of_birth)))
  WHERE date_of_birth IS NOT NULL AND deleted_at IS NULL;
"""


def upgrade() -> None:
    op.execute(INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS contacts_birthday_idx")
