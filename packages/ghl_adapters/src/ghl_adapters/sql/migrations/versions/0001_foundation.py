"""Foundation: agencies, locations, users, grants, API keys, refresh tokens, audit log, event outbox,
idempotency keys; the application role and row-level security.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

APP_ROLE = "ghl_app"

SCHEMA = r"""
DO $$
BEGIN
  -- The application logs in as ghl_app itself, so no statement it runs can switch back to the owner.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ghl_app') THEN
    CREATE ROLE ghl_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  ELSE
    ALTER ROLE ghl_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
END $$;
GRANT USAGE ON SCHEMA public TO ghl_app;

-- The tenant a transaction runs for, set with SET LOCAL (set_config(..., true)). Unset means none.
CREATE FUNCTION ghl_current_agency() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.agency_id', true), '')::uuid $$;
CREATE FUNCTION ghl_current_location() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.location_id', true), '')::uuid $$;

CREATE TABLE agencies (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);

CREATE TABLE locations (
  id uuid PRIMARY KEY,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  name text NOT NULL,
  timezone text NOT NULL,
  country char(2) NOT NULL,
  tier text NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
  settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
CREATE INDEX locations_agency_idx ON locations (agency_id, created_at, id);

CREATE TABLE users (
  id uuid PRIMARY KEY,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  email text NOT NULL CHECK (email = lower(email)),
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('agency_owner', 'agency_admin', 'agency_user')),
  password_hash text,
  clerk_user_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  created_by uuid,
  updated_by uuid
);
-- Log-in is by e-mail alone, so an address belongs to one live user across the installation.
CREATE UNIQUE INDEX users_email_live_key ON users (email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_clerk_live_key ON users (clerk_user_id) WHERE clerk_user_id IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX users_agency_idx ON users (agency_id, created_at, id);

CREATE TABLE user_location_grants (
  user_id uuid NOT NULL REFERENCES users(id),
  location_id uuid NOT NULL REFERENCES locations(id),
  agency_id uuid NOT NULL REFERENCES agencies(id),
  role text NOT NULL CHECK (role IN ('admin', 'user')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, location_id)
);
CREATE INDEX user_location_grants_location_idx ON user_location_grants (location_id);

CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  location_id uuid NOT NULL REFERENCES locations(id),
  agency_id uuid NOT NULL REFERENCES agencies(id),
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_keys_location_idx ON api_keys (location_id, created_at, id);

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id),
  agency_id uuid NOT NULL REFERENCES agencies(id),
  family_id uuid NOT NULL,
  token_hash text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  rotated_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE audit_log (
  id uuid PRIMARY KEY,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  location_id uuid REFERENCES locations(id) DEFERRABLE INITIALLY DEFERRED,
  actor_type text NOT NULL,
  actor_id uuid,
  action text NOT NULL,
  entity_type text NOT NULL,
  entity_id uuid NOT NULL,
  before jsonb,
  after jsonb,
  request_id text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_location_idx ON audit_log (location_id, created_at DESC, id DESC);
CREATE INDEX audit_log_agency_idx ON audit_log (agency_id, created_at DESC, id DESC);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_id);

CREATE TABLE domain_events (
  id uuid PRIMARY KEY,
  agency_id uuid NOT NULL REFERENCES agencies(id),
  location_id uuid REFERENCES locations(id) DEFERRABLE INITIALLY DEFERRED,
  type text NOT NULL,
  entity_id uuid NOT NULL,
  payload jsonb NOT NULL,
  occurred_at timestamptz NOT NULL,
  published_at timestamptz
);
CREATE INDEX domain_events_unpublished_idx ON domain_events (occurred_at) WHERE published_at IS NULL;

CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  key text NOT NULL,
  agency_id uuid,
  location_id uuid,
  fingerprint text NOT NULL,
  state text NOT NULL CHECK (state IN ('started', 'completed')),
  status integer,
  content_type text,
  body bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (principal, key),
  CHECK (agency_id IS NOT NULL OR location_id IS NOT NULL)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
"""

# (table, the rows a transaction may see for reading, the rows it may write, privileges of ghl_app)
AGENCY = "agency_id = ghl_current_agency()"
LOCATION = "location_id = ghl_current_location()"
EITHER = f"({LOCATION}) OR ({AGENCY})"
POLICIES = [
    ("agencies", "id = ghl_current_agency()", "id = ghl_current_agency()", "SELECT, INSERT, UPDATE"),
    ("locations", f"({AGENCY}) OR id = ghl_current_location()", AGENCY, "SELECT, INSERT, UPDATE"),
    ("users", AGENCY, AGENCY, "SELECT, INSERT, UPDATE"),
    ("user_location_grants", AGENCY, AGENCY, "SELECT, INSERT, UPDATE, DELETE"),
    ("api_keys", LOCATION, LOCATION, "SELECT, INSERT, UPDATE"),
    ("refresh_tokens", AGENCY, AGENCY, "SELECT, INSERT, UPDATE"),
    # The audit trail is append-only for the application.
    ("audit_log", EITHER, EITHER, "SELECT, INSERT"),
    ("domain_events", EITHER, EITHER, "SELECT, INSERT"),
    ("idempotency_keys", EITHER, EITHER, "SELECT, INSERT, UPDATE, DELETE"),
]


def rls_sql() -> str:
    parts = []
    for table, read, write, privileges in POLICIES:
        parts.append(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
GRANT {privileges} ON {table} TO {APP_ROLE};
CREATE POLICY tenant_read ON {table} FOR SELECT TO {APP_ROLE} USING ({read});
CREATE POLICY tenant_insert ON {table} FOR INSERT TO {APP_ROLE} WITH CHECK ({write});
CREATE POLICY tenant_update ON {table} FOR UPDATE TO {APP_ROLE} USING ({write}) WITH CHECK ({write});
CREATE POLICY tenant_delete ON {table} FOR DELETE TO {APP_ROLE} USING ({write});
-- The owner is the operator's identity (migrations, the `ghl` command line).
CREATE POLICY operator_all ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
""")
    return "\n".join(parts)


# Look-ups made before the tenant is known. Each answers one narrow question, so the anonymous
# scope can authenticate without being able to read any table.
AUTH_FUNCTIONS = r"""
CREATE FUNCTION ghl_auth_api_key(p_hash text)
RETURNS TABLE (id uuid, location_id uuid, agency_id uuid, scopes text[], tier text, revoked boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  -- Record the last use, at most once a minute, so hot keys do not write on every request.
  UPDATE api_keys k SET last_used_at = now()
   WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
     AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
  RETURN QUERY
  SELECT k.id, k.location_id, k.agency_id, k.scopes, l.tier,
         (k.revoked_at IS NOT NULL OR l.deleted_at IS NOT NULL OR a.deleted_at IS NOT NULL)
    FROM api_keys k JOIN locations l ON l.id = k.location_id JOIN agencies a ON a.id = k.agency_id
   WHERE k.key_hash = p_hash;
END $$;

CREATE FUNCTION ghl_auth_user(p_email text, p_id uuid, p_clerk text)
RETURNS TABLE (id uuid, agency_id uuid, role text, password_hash text, disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT u.id, u.agency_id, u.role, u.password_hash, (a.deleted_at IS NOT NULL)
    FROM users u JOIN agencies a ON a.id = u.agency_id
   WHERE u.deleted_at IS NULL
     AND ((p_email IS NOT NULL AND u.email = p_email)
       OR (p_id IS NOT NULL AND u.id = p_id)
       OR (p_clerk IS NOT NULL AND u.clerk_user_id = p_clerk))
   LIMIT 1
$$;

CREATE FUNCTION ghl_auth_refresh_token(p_hash text)
RETURNS TABLE (id uuid, user_id uuid, agency_id uuid, family_id uuid, token_hash text, expires_at timestamptz,
               created_at timestamptz, rotated_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT t.id, t.user_id, t.agency_id, t.family_id, t.token_hash, t.expires_at, t.created_at, t.rotated_at,
         t.revoked_at
    FROM refresh_tokens t WHERE t.token_hash = p_hash
$$;

CREATE FUNCTION ghl_auth_location_access(p_user uuid, p_location uuid)
RETURNS TABLE (role text, tier text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT g.role, l.tier
    FROM users u
    JOIN locations l ON l.agency_id = u.agency_id AND l.id = p_location AND l.deleted_at IS NULL
    LEFT JOIN user_location_grants g ON g.user_id = u.id AND g.location_id = l.id
   WHERE u.id = p_user AND u.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION ghl_auth_api_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ghl_auth_user(text, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ghl_auth_refresh_token(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ghl_auth_location_access(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_auth_api_key(text) TO ghl_app;
GRANT EXECUTE ON FUNCTION ghl_auth_user(text, uuid, text) TO ghl_app;
GRANT EXECUTE ON FUNCTION ghl_auth_refresh_token(text) TO ghl_app;
GRANT EXECUTE ON FUNCTION ghl_auth_location_access(uuid, uuid) TO ghl_app;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(rls_sql())
    op.execute(AUTH_FUNCTIONS)


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS ghl_auth_api_key(text), ghl_auth_user(text, uuid, text),
          ghl_auth_refresh_token(text), ghl_auth_location_access(uuid, uuid);
        DROP TABLE IF EXISTS idempotency_keys, domain_events, audit_log, refresh_tokens, api_keys,
          user_location_grants, users, locations, agencies;
        DROP FUNCTION IF EXISTS ghl_current_agency(), ghl_current_location();
        REVOKE USAGE ON SCHEMA public FROM ghl_app;
        """
    )
