"""A step type is one handler in a registry: the parser, the simulator (and the engine) know none by name,
so a registry with one more handler reads, writes back and simulates a new step type with no other
change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ghl_core.shared.errors import ValidationFailed
from ghl_core.workflows.definition import STEP_TYPES, definition_json, parse_definition
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.simulation import describe, simulate
from ghl_core.workflows.steps import STEPS, StepRegistry, default_registry
from ghl_core.workflows.steps.base import Jump, Placement, Simulator, StepHandler
from ghl_core.workflows.values import Step


@dataclass(frozen=True, kw_only=True)
class SetSource(Step):
    TYPE = "set_source"
    source: str


class SetSourceHandler(StepHandler[SetSource]):
    step = SetSource

    def read(self, r: Reader) -> dict[str, Any]:
        return {"source": r.text("source", 200)}

    def simulate(self, sim: Simulator, step: SetSource) -> Jump | None:
        sim.contact["source"] = step.source
        sim.note(step, "done", f"source set to {step.source}")
        return None


DOC = {
    "name": "Sources",
    "triggers": [{"type": "manual"}],
    "steps": [{"id": "src", "type": "set_source", "source": "fair"}, {"id": "done", "type": "end"}],
}


def registry() -> StepRegistry:
    steps = default_registry()
    steps.register(SetSourceHandler())
    return steps


def test_every_step_type_has_one_handler_in_the_default_registry() -> None:
    assert list(STEPS) == list(STEP_TYPES)
    for name in STEPS:
        handler = STEPS.get(name)
        assert handler is not None
        assert handler.type == name
        assert name == handler.step.TYPE
        assert handler.placement in (Placement.TRANSACTION, Placement.OUTSIDE)


def test_a_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        registry().register(SetSourceHandler())


def test_a_registered_step_parses_writes_back_and_simulates() -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse_definition(DOC)
    assert failure.value.errors[0].pointer == "/steps/0/type"
    steps = registry()
    definition = parse_definition(DOC, steps)
    assert definition.steps[0] == SetSource(id="src", source="fair")
    assert parse_definition(definition_json(definition), steps) == definition
    run = simulate(
        definition,
        {"first_name": "Ann"},
        start=datetime(2026, 1, 5, 9, tzinfo=UTC),
        contact_zone=ZoneInfo("UTC"),
        location_zone=ZoneInfo("UTC"),
        steps=steps,
    )
    assert [(e["step_id"], e["outcome"]) for e in describe(run)] == [("src", "done"), ("done", "ended")]
    assert run.contact["source"] == "fair"
    assert run.finished == "completed"
