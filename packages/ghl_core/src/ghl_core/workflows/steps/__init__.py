"""The step types of workflows, one module per family, and the default registry that the parser, the
runner and the simulator share. Adding a step type: a value class and a handler in a family module (a new
module for a new family), and a line below. docs/workflows.md shows it step by step."""

from __future__ import annotations

from ghl_core.workflows.steps.base import StepHandler, StepRegistry
from ghl_core.workflows.steps.contact import (
    AddNoteHandler,
    AddTagHandler,
    AssignUserHandler,
    CreateTaskHandler,
    RemoveTagHandler,
    SetDndHandler,
    UpdateFieldHandler,
)
from ghl_core.workflows.steps.enrollments import AddToWorkflowHandler, RemoveFromWorkflowHandler
from ghl_core.workflows.steps.flow import (
    EndHandler,
    GoalHandler,
    GotoHandler,
    IfElseHandler,
    SplitHandler,
    WaitHandler,
)
from ghl_core.workflows.steps.messaging import InternalNotificationHandler, SendEmailHandler, SendSmsHandler
from ghl_core.workflows.steps.opportunities import (
    CreateOpportunityHandler,
    MoveStageHandler,
    SetOpportunityStatusHandler,
)
from ghl_core.workflows.steps.webhook import WebhookHandler

__all__ = ["STEPS", "StepHandler", "StepRegistry", "default_registry"]


def default_registry() -> StepRegistry:
    """Every step type, in the order documents and error messages list them."""
    return StepRegistry(
        [
            SendSmsHandler(),
            SendEmailHandler(),
            InternalNotificationHandler(),
            AddTagHandler(),
            RemoveTagHandler(),
            UpdateFieldHandler(),
            AssignUserHandler(),
            AddNoteHandler(),
            CreateTaskHandler(),
            CreateOpportunityHandler(),
            MoveStageHandler(),
            SetOpportunityStatusHandler(),
            AddToWorkflowHandler(),
            RemoveFromWorkflowHandler(),
            WebhookHandler(),
            SetDndHandler(),
            WaitHandler(),
            IfElseHandler(),
            GoalHandler(),
            SplitHandler(),
            GotoHandler(),
            EndHandler(),
        ]
    )


STEPS = default_registry()
