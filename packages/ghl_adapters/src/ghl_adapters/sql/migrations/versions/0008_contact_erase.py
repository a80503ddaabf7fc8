"""Erasing a contact (right to be forgotten): scrub its personal data from its notes and tasks, and from
the audit trail and the event outbox of the contact and of those notes and tasks. The application may not
update the audit trail, so a narrow security-definer function does it, for the caller's own location only.

Revision ID: 0008_contact_erase
Revises: 0007_contact_imports
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008_contact_erase"
down_revision = "0007_contact_imports"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE FUNCTION ghl_erase_contact_history(p_contact uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_location uuid := ghl_current_location();
  v_rows integer;
BEGIN
  IF v_location IS NULL THEN
    RAISE EXCEPTION 'no location in scope';
  END IF;
  UPDATE notes SET body = '[erased]' WHERE contact_id = p_contact AND location_id = v_location;
  UPDATE tasks SET title = '[erased]', body = NULL WHERE contact_id = p_contact AND location_id = v_location;
  UPDATE audit_log SET before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
                       after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END
   WHERE location_id = v_location
     AND (entity_id = p_contact
          OR entity_id IN (SELECT id FROM notes WHERE contact_id = p_contact AND location_id = v_location)
          OR entity_id IN (SELECT id FROM tasks WHERE contact_id = p_contact AND location_id = v_location));
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  UPDATE domain_events SET payload = jsonb_build_object('erased', true, 'contact_id', p_contact)
   WHERE location_id = v_location
     AND (entity_id = p_contact
          OR entity_id IN (SELECT id FROM notes WHERE contact_id = p_contact AND location_id = v_location)
          OR entity_id IN (SELECT id FROM tasks WHERE contact_id = p_contact AND location_id = v_location));
  RETURN v_rows;
END $$;
REVOKE ALL ON FUNCTION ghl_erase_contact_history(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_erase_contact_history(uuid) TO ghl_app;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ghl_erase_contact_history(uuid)")
