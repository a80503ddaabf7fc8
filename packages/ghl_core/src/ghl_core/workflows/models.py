"""Stored workflows, their published versions, enrollments and the execution ledger (step runs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ghl_core.shared.errors import Conflict


class WorkflowStatus(StrEnum):
    DRAFT = "draft"  # never published, or unpublished: nothing enrolls, nothing runs
    PUBLISHED = "published"
    PAUSED = "paused"  # published once; triggers do not enroll and running enrollments were stopped


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"  # a step is due or running
    WAITING = "waiting"  # in a wait (a time, an event, a send window)
    COMPLETED = "completed"
    GOAL = "goal"  # finished by reaching a goal
    STOPPED = "stopped"  # stopped on reply, removed, contact deleted, workflow unpublished
    FAILED = "failed"  # a step failed for good


RUNNING = frozenset({EnrollmentStatus.ACTIVE, EnrollmentStatus.WAITING})


class StepRunStatus(StrEnum):
    RUNNING = "running"  # claimed: its side effect may be under way
    DONE = "done"
    SKIPPED = "skipped"  # e.g. a send to a contact with do-not-disturb
    WAITING = "waiting"
    FAILED = "failed"


class WorkflowStateError(Conflict):
    code = "workflow_state"
    title = "Not possible in the workflow's current state"


@dataclass(slots=True)
class Workflow:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    status: WorkflowStatus
    draft: dict[str, Any]  # the definition being edited, as authored (JSON)
    created_at: datetime
    updated_at: datetime
    version: int = 0  # the latest published version; 0: never published
    hook_token_hash: str | None = None  # SHA-256 of the inbound-webhook trigger's secret
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkflowVersion:
    workflow_id: uuid.UUID
    location_id: uuid.UUID
    version: int
    definition: dict[str, Any]  # as authored; parsed with parse_definition when run
    published_at: datetime
    published_by: uuid.UUID | None = None


@dataclass(slots=True)
class Enrollment:
    """One contact going through one version of a workflow. `tick` counts the enrollment's moves: each
    step job carries the tick it was queued for, and a job whose tick is no longer current does nothing
    (the enrollment moved on: a goal, an event, a stop). (enrollment, step, tick) keys the ledger."""

    id: uuid.UUID
    location_id: uuid.UUID
    workflow_id: uuid.UUID
    version: int
    contact_id: uuid.UUID
    status: EnrollmentStatus
    started_at: datetime
    updated_at: datetime
    trigger: str  # the trigger type that enrolled the contact, or "manual", "workflow"
    step_id: str | None = None  # the step due next (or waited on); None once finished
    tick: int = 0
    wake_at: datetime | None = None
    waiting_for: dict[str, Any] | None = None  # an event wait: {"event", "filter", "step", "timeout_next"}
    cause: str | None = None  # what enrolled it (an event id, a request): unique per workflow
    opportunity_id: uuid.UUID | None = None  # the opportunity of the trigger, if any
    outputs: dict[str, Any] = field(default_factory=dict)  # step id -> its output (webhook responses)
    finished_at: datetime | None = None
    reason: str | None = None  # why it stopped or failed


@dataclass(slots=True)
class StepRun:
    """One visit of one step: the execution ledger and the enrollment's history."""

    enrollment_id: uuid.UUID
    location_id: uuid.UUID
    workflow_id: uuid.UUID
    step_id: str
    tick: int
    type: str
    status: StepRunStatus
    started_at: datetime
    outcome: str = ""  # short machine word: sent, skipped_dnd, branch, goal, waiting, ...
    detail: str = ""  # for people
    output: dict[str, Any] | None = None
    error: str | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    enrolled: int
    active: int
    waiting: int
    completed: int
    goal: int
    stopped: int
    failed: int
    steps: dict[str, dict[str, int]]  # step id -> step-run status -> count
