"""Table definitions of the pipelines context, for queries. The schema is owned by 0005_pipelines."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()


def _ts(name: str) -> Column[object]:
    return Column(name, DateTime(timezone=True))


def _uuid(name: str, primary_key: bool = False) -> Column[object]:
    return Column(name, UUID(as_uuid=True), primary_key=primary_key)


pipelines = Table(
    "pipelines",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    Column("name", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at"),
    _uuid("created_by"),
    _uuid("updated_by"),
)

pipeline_stages = Table(
    "pipeline_stages",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    _uuid("pipeline_id"),
    Column("name", Text),
    Column("position", Integer),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at"),
)

opportunities = Table(
    "opportunities",
    metadata,
    _uuid("id", True),
    _uuid("location_id"),
    _uuid("pipeline_id"),
    _uuid("stage_id"),
    _uuid("contact_id"),
    Column("name", Text),
    Column("value_amount", BigInteger),
    Column("value_currency", String(3)),
    Column("status", Text),
    Column("lost_reason", Text),
    _uuid("assigned_user_id"),
    Column("source", Text),
    Column("custom_fields", JSONB),
    _ts("last_status_change_at"),
    _ts("last_stage_change_at"),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at"),
    _uuid("created_by"),
    _uuid("updated_by"),
)

opportunity_moves = Table(
    "opportunity_moves",
    metadata,
    _uuid("id", True),
    Column("seq", BigInteger),
    _uuid("location_id"),
    _uuid("opportunity_id"),
    _uuid("from_stage_id"),
    _uuid("to_stage_id"),
    Column("from_status", Text),
    Column("to_status", Text),
    _ts("moved_at"),
    _uuid("moved_by"),
    Column("moved_by_type", Text),
)
