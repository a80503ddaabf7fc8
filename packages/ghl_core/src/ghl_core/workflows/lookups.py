"""Look-ups the workflow services share: the caller's location, a workflow that is not deleted, its
published version; and the checks on what they store."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.untrusted import nul_errors
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.workflows.models import Workflow, WorkflowStateError, WorkflowStatus, WorkflowVersion
from ghl_core.workflows.ports import WorkflowsUnitOfWork


def storable(value: Mapping[str, Any]) -> None:
    errors = nul_errors(value)
    if errors:
        raise ValidationFailed(errors)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def location_of(uow: WorkflowsUnitOfWork, location_id: uuid.UUID) -> Location:
    return await live_location(uow, location_id)


async def visible(uow: WorkflowsUnitOfWork, workflow_id: uuid.UUID, *, lock: bool = False) -> Workflow:
    workflow = await uow.workflows.get(workflow_id, lock=lock)
    if workflow is None or workflow.deleted_at is not None:
        raise NotFound(f"workflow {workflow_id} not found")
    return workflow


async def published(uow: WorkflowsUnitOfWork, workflow: Workflow) -> WorkflowVersion:
    if workflow.status is not WorkflowStatus.PUBLISHED:
        raise WorkflowStateError(f"workflow {workflow.id} is {workflow.status.value}: publish it first")
    version = await uow.workflows.version(workflow.id, workflow.version)
    if version is None:  # pragma: no cover - publishing writes the version with the status
        raise WorkflowStateError(f"workflow {workflow.id} has no published version")
    return version
