"""Erasing a contact also erases what its workflow enrollments kept: the outputs steps recorded (an
outbound webhook's response body may echo anything about the contact), and the detail, output and error
of each step run. The enrollments and step runs themselves stay, anonymous (status, step, outcome and
times), so workflow statistics keep adding up, like the contact row itself.

`ghl_erase_contact_history` (migration 0008) is redefined with the same statements plus these two.

Revision ID: 0018_erase_workflow_data
Revises: 0017_contact_statistics
Create Date: 2026-12-04
"""

from alembic import op

revision = "0018_erase_workflow_data"
down_revision = "0017_contact_statistics"
branch_labels = None
depends_on = None

BODY = """
CREATE OR REPLACE FUNCTION ghl_erase_contact_history(p_contact uuid) RETURNS integer
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
{workflows}  RETURN v_rows;
END $$;
"""

WORKFLOWS = """  UPDATE workflow_step_runs
     SET detail = CASE WHEN detail = '' THEN '' ELSE '[erased]' END,
         output = NULL,
         error = CASE WHEN error IS NULL THEN NULL ELSE '[erased]' END
   WHERE location_id = v_location
     AND enrollment_id IN (SELECT id FROM workflow_enrollments
                            WHERE contact_id = p_contact AND location_id = v_location);
  UPDATE workflow_enrollments SET outputs = '{}'::jsonb
   WHERE contact_id = p_contact AND location_id = v_location AND outputs <> '{}'::jsonb;
"""


def upgrade() -> None:
    op.execute(BODY.replace("{workflows}", WORKFLOWS))


def downgrade() -> None:
    op.execute(BODY.replace("{workflows}", ""))
