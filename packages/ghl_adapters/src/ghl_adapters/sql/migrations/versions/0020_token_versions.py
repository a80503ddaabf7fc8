"""User token versions: an access token names the version of its user's access it was issued under.

An access token (JWT) lives for its full lifetime once issued, so removing a user, changing their role or
taking away a location grant used to leave their tokens working for up to 15 minutes. Each user now has a
`token_version`; the token carries it (`ver`), and authentication compares it with the current value
(cached, invalidated in every process on change). Removal, a role change or a reduced grant bumps it,
ending every access token issued before; refresh tokens stay valid except on removal, so a client just
refreshes to get a token with the new rights.

`ghl_auth_user` also answers the version, so log-in and refresh issue tokens with the current one from
the same row (and the same snapshot) as the role. Its result type changes, so it is dropped and created.
A location's deletion and plan tier need no column: authentication reads the location's current row
(also cached) for location tokens.

Revision ID: 0020_token_versions
Revises: 0019_outbox_tenant_keys
Create Date: 2026-12-07
"""

from alembic import op

revision = "0020_token_versions"
down_revision = "0019_outbox_tenant_keys"
branch_labels = None
depends_on = None

_GRANT = """
REVOKE ALL ON FUNCTION ghl_auth_user(text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ghl_auth_user(text, uuid, text) TO ghl_app;
"""


def _auth_user(columns: str, selected: str) -> str:
    return f"""
DROP FUNCTION ghl_auth_user(text, uuid, text);
CREATE FUNCTION ghl_auth_user(p_email text, p_id uuid, p_clerk text)
RETURNS TABLE ({columns})
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT {selected}
    FROM users u JOIN agencies a ON a.id = u.agency_id
   WHERE u.deleted_at IS NULL
     AND ((p_email IS NOT NULL AND u.email = p_email)
       OR (p_id IS NOT NULL AND u.id = p_id)
       OR (p_clerk IS NOT NULL AND u.clerk_user_id = p_clerk))
   LIMIT 1
$$;
{_GRANT}"""


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0")
    op.execute(
        _auth_user(
            "id uuid, agency_id uuid, role text, password_hash text, disabled boolean, token_version integer",
            "u.id, u.agency_id, u.role, u.password_hash, (a.deleted_at IS NOT NULL), u.token_version",
        )
    )


def downgrade() -> None:
    op.execute(
        _auth_user(
            "id uuid, agency_id uuid, role text, password_hash text, disabled boolean",
            "u.id, u.agency_id, u.role, u.password_hash, (a.deleted_at IS NOT NULL)",
        )
    )
    op.execute("ALTER TABLE users DROP COLUMN token_version")
