"""JSON views of workflows, versions, enrollments, step runs and statistics: the same for the HTTP API
and `ghl workflows --json`. A workflow's view never holds its hook secret's hash, only whether it has
one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ghl_core.workflows.models import Enrollment, StepRun, Workflow, WorkflowStats, WorkflowVersion

Json = dict[str, Any]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


def workflow_view(w: Workflow, *, draft: bool = True) -> Json:
    view: Json = {
        "id": str(w.id),
        "name": w.name,
        "status": w.status.value,
        "version": w.version,
        "hook_enabled": w.hook_token_hash is not None,
        "created_at": _time(w.created_at),
        "updated_at": _time(w.updated_at),
        "created_by": _id(w.created_by),
        "updated_by": _id(w.updated_by),
    }
    if draft:
        view["draft"] = w.draft
    return view


def version_view(v: WorkflowVersion) -> Json:
    return {
        "workflow_id": str(v.workflow_id),
        "version": v.version,
        "name": v.definition.get("name"),
        "published_at": _time(v.published_at),
        "published_by": _id(v.published_by),
    }


def enrollment_view(e: Enrollment) -> Json:
    return {
        "id": str(e.id),
        "workflow_id": str(e.workflow_id),
        "version": e.version,
        "contact_id": str(e.contact_id),
        "status": e.status.value,
        "trigger": e.trigger,
        "step_id": e.step_id,
        "tick": e.tick,
        "wake_at": _time(e.wake_at),
        "waiting_for": e.waiting_for,
        "opportunity_id": _id(e.opportunity_id),
        "reason": e.reason,
        "started_at": _time(e.started_at),
        "updated_at": _time(e.updated_at),
        "finished_at": _time(e.finished_at),
    }


def step_run_view(r: StepRun) -> Json:
    return {
        "step_id": r.step_id,
        "tick": r.tick,
        "type": r.type,
        "status": r.status.value,
        "outcome": r.outcome,
        "detail": r.detail,
        "output": r.output,
        "error": r.error,
        "started_at": _time(r.started_at),
        "finished_at": _time(r.finished_at),
    }


def stats_view(s: WorkflowStats) -> Json:
    return {
        "enrolled": s.enrolled,
        "active": s.active,
        "waiting": s.waiting,
        "completed": s.completed,
        "goal": s.goal,
        "stopped": s.stopped,
        "failed": s.failed,
        "steps": s.steps,
    }
