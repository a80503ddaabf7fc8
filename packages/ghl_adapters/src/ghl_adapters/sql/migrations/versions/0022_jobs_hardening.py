"""A failed job's error in two parts: what its location admin may read, and the detail for operators.

`job_errors.error` was the exception's text, and a location admin reads it (`ghl_location_failed_jobs`,
`GET /api/v1/jobs/failed`): a driver error carried its SQL and the values it was given. It now holds
what the location admin may read (a domain error's message, or a generic sentence) with the error id;
the new `detail` column holds the exception's text, for operators (`ghl jobs`) and beside the log line
with the same error id. The application's role keeps reading the other columns and cannot read `detail`
(column privileges; it reads this table only through the security-definer function anyway).

Rows written before keep their text as `detail`; their `error` becomes the generic sentence with the
error id a worker would write now (`job id`-`attempt`, see ghl_core/jobs/errors.py).

Revision ID: 0022_jobs_hardening
Revises: 0021_plan_limits
Create Date: 2026-12-07
"""

from alembic import op

revision = "0022_jobs_hardening"
down_revision = "0021_plan_limits"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE job_errors ADD COLUMN detail text;
UPDATE job_errors
   SET detail = error,
       error = 'the job stopped on an internal error (error id ' || job_id || '-' || attempt
               || '); your operator has the detail';
REVOKE SELECT ON job_errors FROM ghl_app;
GRANT SELECT (job_id, location_id, kind, attempt, error, occurred_at) ON job_errors TO ghl_app;
"""

DOWNGRADE = """
REVOKE SELECT (job_id, location_id, kind, attempt, error, occurred_at) ON job_errors FROM ghl_app;
GRANT SELECT ON job_errors TO ghl_app;
UPDATE job_errors SET error = detail WHERE detail IS NOT NULL;
ALTER TABLE job_errors DROP COLUMN detail;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
