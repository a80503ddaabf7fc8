"""The job engine: procrastinate's schema on the platform's database, the last error of each failed job,
and the narrow functions through which a location admin lists and retries its own failed jobs.

Revision ID: 0010_jobs
Revises: 0009_contact_fulltext
Create Date: 2026-11-25
"""

import re

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0010_jobs"
down_revision = "0009_contact_fulltext"
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

# The application defers jobs inside its own transactions (procrastinate_defer_jobs_v1 on the request's
# connection), so its role may insert jobs and their status events, and read back their ids; nothing
# else in procrastinate's tables. Workers run as the owner.
GRANTS = f"""
GRANT INSERT ON procrastinate_jobs, procrastinate_events TO {APP_ROLE};
-- queueing_lock and status too: a commit looks for a waiting consumer job before queueing another, and
-- PostgreSQL names the duplicate key of a taken queueing lock only to a role that may read it (procrastinate
-- needs that name to tell a taken lock from other conflicts).
GRANT SELECT (id, queueing_lock, status) ON procrastinate_jobs TO {APP_ROLE};
GRANT SELECT (id) ON procrastinate_events TO {APP_ROLE};
GRANT USAGE ON SEQUENCE procrastinate_jobs_id_seq, procrastinate_events_id_seq TO {APP_ROLE};
"""

# What each consumer still has to take, per location: rows written at commit beside the events, deleted
# by the consumer's job once handled. One job per consumer and location drains them all, in order.
EVENT_OUTBOX = f"""
CREATE TABLE event_outbox (
  id bigserial PRIMARY KEY,
  consumer text NOT NULL,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  location_id uuid NOT NULL REFERENCES locations(id) DEFERRABLE INITIALLY DEFERRED,
  event_id uuid NOT NULL REFERENCES domain_events(id) ON DELETE CASCADE
);
CREATE INDEX event_outbox_consumer_idx ON event_outbox (consumer, location_id, id);
ALTER TABLE event_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_outbox FORCE ROW LEVEL SECURITY;
GRANT INSERT ON event_outbox TO {APP_ROLE};
GRANT USAGE ON SEQUENCE event_outbox_id_seq TO {APP_ROLE};
-- Like domain_events: a location's transaction, or its agency's (creating a location records its events).
CREATE POLICY tenant_insert ON event_outbox FOR INSERT TO {APP_ROLE}
  WITH CHECK (location_id = ghl_current_location() OR agency_id = ghl_current_agency());
CREATE POLICY operator_all ON event_outbox FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
"""

JOB_ERRORS = f"""
CREATE TABLE job_errors (
  job_id bigint PRIMARY KEY REFERENCES procrastinate_jobs(id) ON DELETE CASCADE,
  location_id uuid REFERENCES locations(id),
  kind text NOT NULL,
  attempt integer NOT NULL,
  error text NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_errors_location_idx ON job_errors (location_id, job_id DESC);
ALTER TABLE job_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_errors FORCE ROW LEVEL SECURITY;
GRANT SELECT ON job_errors TO {APP_ROLE};
CREATE POLICY tenant_read ON job_errors FOR SELECT TO {APP_ROLE} USING (location_id = ghl_current_location());
CREATE POLICY operator_all ON job_errors FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);

-- A location's failed jobs, newest first: only those whose arguments name the caller's location.
CREATE FUNCTION ghl_location_failed_jobs(p_limit integer, p_before bigint)
RETURNS TABLE (id bigint, kind text, queue text, attempts integer, args jsonb,
               scheduled_at timestamptz, error text, failed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT j.id, j.task_name::text, j.queue_name::text, j.attempts, j.args, j.scheduled_at, e.error,
         e.occurred_at
  FROM procrastinate_jobs j LEFT JOIN job_errors e ON e.job_id = j.id
  WHERE j.status = 'failed'
    AND j.args ->> 'location_id' = ghl_current_location()::text
    AND (p_before IS NULL OR j.id < p_before)
  ORDER BY j.id DESC
  LIMIT p_limit
$$;

-- Puts one of the caller's failed jobs back in the queue; false when there is no such failed job.
CREATE FUNCTION ghl_location_retry_job(p_job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  PERFORM 1 FROM procrastinate_jobs
   WHERE id = p_job AND status = 'failed' AND args ->> 'location_id' = ghl_current_location()::text
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM procrastinate_retry_job_v2(p_job, now(), NULL, NULL, NULL);
  RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ghl_location_failed_jobs(integer, bigint), ghl_location_retry_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_location_failed_jobs(integer, bigint), ghl_location_retry_job(bigint)
  TO {APP_ROLE};
"""


def upgrade() -> None:
    # procrastinate's own schema for the installed version; a later procrastinate upgrade ships its SQL
    # migrations, which a later revision here applies.
    # Straight to the driver: the schema holds '%' in PL/pgSQL RAISE formats, which are not parameters.
    driver = op.get_bind().connection.driver_connection
    assert driver is not None  # noqa: S101 - alembic always runs on an open connection
    driver.execute(SchemaManager.get_schema())
    op.execute(GRANTS)
    op.execute(EVENT_OUTBOX)
    op.execute(JOB_ERRORS)


def downgrade() -> None:
    schema = SchemaManager.get_schema()
    for name in sorted(set(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)", schema))):
        op.execute(f"DROP FUNCTION IF EXISTS {name} CASCADE")
    op.execute(
        """
        DROP FUNCTION IF EXISTS ghl_location_retry_job(bigint);
        DROP FUNCTION IF EXISTS ghl_location_failed_jobs(integer, bigint);
        DROP TABLE IF EXISTS job_errors, event_outbox;
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
          procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
          procrastinate_job_to_defer_v1 CASCADE;
        """
    )
