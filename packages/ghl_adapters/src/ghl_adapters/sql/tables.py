"""Table definitions for queries (SQLAlchemy Core). The schema itself is owned by the migrations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _uuid(name: str, primary_key: bool = False, nullable: bool = True) -> Column[object]:
    return Column(name, UUID(as_uuid=True), primary_key=primary_key, nullable=nullable)


def _stamps() -> list[Column[object]]:
    return [
        _ts("created_at", False),
        _ts("updated_at", False),
        _ts("deleted_at"),
        _uuid("created_by"),
        _uuid("updated_by"),
    ]


agencies = Table("agencies", metadata, _uuid("id", True), Column("name", Text), *_stamps())

locations = Table(
    "locations",
    metadata,
    _uuid("id", True),
    _uuid("agency_id"),
    Column("name", Text),
    Column("timezone", Text),
    Column("country", String(2)),
    Column("tier", Text),
    Column("settings", JSONB),
    *_stamps(),
)

users = Table(
    "users",
    metadata,
    _uuid("id", True),
    _uuid("agency_id"),
    Column("email", Text),
    Column("name", Text),
    Column("role", Text),
    Column("password_hash", Text),
    Column("clerk_user_id", Text),
    Column("token_version", Integer),
    *_stamps(),
)

user_location_grants = Table(
    "user_location_grants",
    metadata,
    _uuid("user_id", True),
    _uuid("location_id", True),
    _uuid("agency_id"),
    Column("role", Text),
    _ts("created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    _uuid("agency_id"),
    Column("name", Text),
    Column("prefix", Text),
    Column("key_hash", Text),
    Column("scopes", ARRAY(Text)),
    _ts("created_at"),
    _ts("updated_at"),
    _uuid("created_by"),
    _uuid("updated_by"),
    _ts("last_used_at"),
    _ts("revoked_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    _uuid("id", True),
    _uuid("user_id"),
    _uuid("agency_id"),
    _uuid("family_id"),
    Column("token_hash", Text),
    _ts("expires_at"),
    _ts("created_at"),
    _ts("rotated_at"),
    _ts("revoked_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _uuid("id", True),
    _uuid("agency_id"),
    _uuid("location_id"),
    Column("actor_type", Text),
    _uuid("actor_id"),
    Column("action", Text),
    Column("entity_type", Text),
    _uuid("entity_id"),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("request_id", Text),
    _ts("created_at"),
)

domain_events = Table(
    "domain_events",
    metadata,
    _uuid("id", True),
    _uuid("agency_id"),
    _uuid("location_id"),
    Column("type", Text),
    _uuid("entity_id"),
    Column("payload", JSONB),
    _ts("occurred_at"),
    _ts("published_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    _uuid("agency_id"),
    _uuid("location_id"),
    Column("fingerprint", Text),
    Column("state", Text),
    Column("status", Integer),
    Column("content_type", Text),
    Column("body", LargeBinary),
    _ts("created_at"),
    _ts("expires_at"),
)


contact_settings = Table(
    "contact_settings",
    metadata,
    _uuid("location_id", True),
    Column("allow_duplicates", Boolean),
    Column("duplicate_priority", Text),
    _ts("updated_at"),
)

contacts = Table(
    "contacts",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    *(
        Column(name, Text)
        for name in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "company_name",
            "address1",
            "city",
            "state",
            "postal_code",
            "country",
            "website",
            "timezone",
            "gender",
            "source",
            "email_key",
            "phone_key",
        )
    ),
    Column("date_of_birth", Date),
    Column("attribution", JSONB),
    _uuid("assigned_user_id"),
    Column("dnd", Boolean),
    Column("dnd_channels", JSONB),
    Column("tags", ARRAY(Text)),
    Column("custom_fields", JSONB),
    _ts("last_activity_at"),
    _uuid("merged_into"),
    _ts("erased_at"),
    *_stamps(),
)

tags = Table(
    "tags",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    Column("name", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _uuid("created_by"),
    _uuid("updated_by"),
)

custom_field_definitions = Table(
    "custom_field_definitions",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    Column("key", Text),
    Column("label", Text),
    Column("type", Text),
    Column("options", JSONB),
    *_stamps(),
)


def unnest_insert(
    table: str, columns: list[tuple[str, str]], tail: str = ""
) -> tuple[TextClause, Callable[[list[dict[str, Any]]], dict[str, Any]]]:
    """A many-row INSERT as one constant statement over arrays (`INSERT ... SELECT FROM unnest(...)`):
    unlike a multi-row VALUES list it is compiled and parsed once, whatever the number of rows.
    `columns` are (name, PostgreSQL type); jsonb values travel as text. Returns the statement and a
    function turning row dicts into its parameters."""
    arrays = ", ".join(f"CAST(:{name} AS {'text' if kind == 'jsonb' else kind}[])" for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    picks = ", ".join(
        f"CAST(u.{name} AS jsonb)" if kind == "jsonb" else f"u.{name}" for name, kind in columns
    )
    sql = f"INSERT INTO {table} ({names}) SELECT {picks} FROM unnest({arrays}) AS u({names}) {tail}"  # noqa: S608 - table and column names are the caller's constants
    statement = text(sql)

    def params(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            name: [json.dumps(r[name]) if kind == "jsonb" and r[name] is not None else r[name] for r in rows]
            for name, kind in columns
        }

    return statement, params


def json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array for `json_to_recordset` (ids and times as their text forms, which
    PostgreSQL reads back as uuid and timestamptz; jsonb values stay nested JSON)."""
    return json.dumps(rows, default=str, separators=(",", ":"))


def recordset_insert(table: str, columns: list[tuple[str, str]], tail: str = "") -> TextClause:
    """As `unnest_insert`, with the rows in one JSON parameter (`:rows`, from `json_rows`), read by
    `json_to_recordset`. psycopg dumps a text[] parameter element by element in Python, with a regex
    escape of every quote, which makes jsonb values (all quotes) costly; `json.dumps` runs in C."""
    names = ", ".join(name for name, _ in columns)
    typed = ", ".join(f"{name} {kind}" for name, kind in columns)
    return text(
        f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - table and column names are the caller's constants
        f"FROM json_to_recordset(CAST(:rows AS json)) AS u({typed}) {tail}"
    )
