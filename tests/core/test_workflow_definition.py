"""Workflow definitions: the lead-nurture example parses, every kind of mistake is reported with a pointer to
the member at fault, the graph checks catch unreachable steps and endless loops, and a definition survives
being written out and read back."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import time, timedelta
from typing import Any

import pytest

from ghl_core.shared.errors import ValidationFailed
from ghl_core.workflows.definition import (
    END,
    MAX_STEPS,
    AddTag,
    ChannelTrigger,
    ContactChangedTrigger,
    CreateTask,
    Definition,
    End,
    Goal,
    Goto,
    IfElse,
    OpportunityTrigger,
    ReminderTrigger,
    SendEmail,
    SendSms,
    SetDnd,
    Split,
    SplitPath,
    TagTrigger,
    Trigger,
    UpdateField,
    Wait,
    Webhook,
    definition_json,
    parse_definition,
)
from ghl_core.workflows.waits import ResumeWindow

PIPELINE = "6f1c1d43-63a4-4c9e-9d0b-6a4f0d1e2a11"
STAGE = "0b7e2a55-1f0a-4a7c-8d5e-3b9a1c2d4e66"
USER = "a3d5c7e9-2b4d-4f6a-8c0e-1a3b5c7d9e0f"
WORKFLOW = "c1e2d3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
EMAIL_SET = {"all": [{"field": "contact.email", "op": "exists"}]}

LEAD_NURTURE_YAML = """
name: Lead nurture
settings:
  allow_reentry: false
  stop_on_reply: true
  time_zone: contact
  send_window: {days: [mon, tue, wed, thu, fri], from: "08:00", to: "20:00"}
triggers:
  - type: contact_created
    filters: {all: [{field: contact.email, op: exists}]}
  - {type: tag_added, tag: Lead}
  - {type: customer_replied, channel: sms}
  - {type: pipeline_stage_changed, pipeline_id: 6f1c1d43-63a4-4c9e-9d0b-6a4f0d1e2a11,
     stage_id: 0b7e2a55-1f0a-4a7c-8d5e-3b9a1c2d4e66}
  - {type: birthday_reminder, days_before: 3, at: "09:00"}
  - {type: inbound_webhook}
steps:
  - {id: text_them, type: send_sms, body: "Hi {{contact.first_name}}, thanks for your interest!"}
  - {id: wait_5, type: wait, wait: {minutes: 5}}
  - id: check
    type: if_else
    branches:
      - name: replied
        when: {all: [{field: last_message.direction, op: eq, value: inbound}]}
        next: done
    else: email_them
  - {id: email_them, type: send_email, subject: "Your quote", body: "Hi {{contact.first_name}}",
     html: "<p>Hi {{contact.first_name}}</p>"}
  - id: wait_reply
    type: wait
    wait: {event: contact.replied, channel: sms, timeout: {days: 1}}
    timeout_next: tag
  - {id: tag, type: add_tag, tags: [nurtured]}
  - {id: move, type: move_stage, pipeline_id: 6f1c1d43-63a4-4c9e-9d0b-6a4f0d1e2a11,
     stage_id: 0b7e2a55-1f0a-4a7c-8d5e-3b9a1c2d4e66}
  - {id: goal, type: goal, event: {event: tag.added, tag: customer}, then: end}
  - {id: done, type: end}
"""

# The same document as the API receives it (JSON).
LEAD_NURTURE: dict[str, Any] = {
    "name": "Lead nurture",
    "settings": {
        "allow_reentry": False,
        "stop_on_reply": True,
        "time_zone": "contact",
        "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "20:00"},
    },
    "triggers": [
        {"type": "contact_created", "filters": {"all": [{"field": "contact.email", "op": "exists"}]}},
        {"type": "tag_added", "tag": "Lead"},
        {"type": "customer_replied", "channel": "sms"},
        {
            "type": "pipeline_stage_changed",
            "pipeline_id": "6f1c1d43-63a4-4c9e-9d0b-6a4f0d1e2a11",
            "stage_id": "0b7e2a55-1f0a-4a7c-8d5e-3b9a1c2d4e66",
        },
        {"type": "birthday_reminder", "days_before": 3, "at": "09:00"},
        {"type": "inbound_webhook"},
    ],
    "steps": [
        {
            "id": "text_them",
            "type": "send_sms",
            "body": "Hi {{contact.first_name}}, thanks for your interest!",
        },
        {"id": "wait_5", "type": "wait", "wait": {"minutes": 5}},
        {
            "id": "check",
            "type": "if_else",
            "branches": [
                {
                    "name": "replied",
                    "when": {"all": [{"field": "last_message.direction", "op": "eq", "value": "inbound"}]},
                    "next": "done",
                }
            ],
            "else": "email_them",
        },
        {
            "id": "email_them",
            "type": "send_email",
            "subject": "Your quote",
            "body": "Hi {{contact.first_name}}",
            "html": "<p>Hi {{contact.first_name}}</p>",
        },
        {
            "id": "wait_reply",
            "type": "wait",
            "wait": {"event": "contact.replied", "channel": "sms", "timeout": {"days": 1}},
            "timeout_next": "tag",
        },
        {"id": "tag", "type": "add_tag", "tags": ["nurtured"]},
        {
            "id": "move",
            "type": "move_stage",
            "pipeline_id": "6f1c1d43-63a4-4c9e-9d0b-6a4f0d1e2a11",
            "stage_id": "0b7e2a55-1f0a-4a7c-8d5e-3b9a1c2d4e66",
        },
        {"id": "goal", "type": "goal", "event": {"event": "tag.added", "tag": "customer"}, "then": "end"},
        {"id": "done", "type": "end"},
    ],
}


def lead_nurture() -> dict[str, Any]:
    return copy.deepcopy(LEAD_NURTURE)


def load_yaml(text: str) -> Any:
    """The CLI reads YAML with PyYAML; skip, rather than fail, where it is not installed."""
    return pytest.importorskip("yaml").safe_load(text)


def doc_with(*steps: Any, **top: Any) -> dict[str, Any]:
    """A minimal valid document around the given steps."""
    return {"name": "Test", "triggers": [{"type": "manual"}], "steps": list(steps), **top}


def sms(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "send_sms", "body": "Hello", **extra}


def errors_of(doc: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_definition(doc)
    return {e.pointer: e.detail for e in caught.value.errors}


def step_errors(*steps: Any) -> dict[str, str]:
    return errors_of(doc_with(*steps))


# --- the lead-nurture example


def test_the_yaml_and_json_forms_of_the_example_are_the_same_workflow() -> None:
    assert parse_definition(load_yaml(LEAD_NURTURE_YAML)) == parse_definition(lead_nurture())


def test_lead_nurture_parses_into_typed_immutable_steps() -> None:
    d = parse_definition(lead_nurture())

    assert d.name == "Lead nurture"
    assert d.settings.stop_on_reply
    assert not d.settings.allow_reentry
    assert d.settings.send_window == ResumeWindow(frozenset(range(5)), time(8), time(20))
    assert [t.type for t in d.triggers] == [
        "contact_created",
        "tag_added",
        "customer_replied",
        "pipeline_stage_changed",
        "birthday_reminder",
        "inbound_webhook",
    ]
    assert d.triggers[0].filters is not None
    assert d.triggers[1] == TagTrigger(type="tag_added", tag="lead")  # tags compare lower-cased
    assert d.triggers[2] == ChannelTrigger(type="customer_replied", channel="sms")
    assert d.triggers[3] == OpportunityTrigger(
        type="pipeline_stage_changed", pipeline_id=uuid.UUID(PIPELINE), stage_id=uuid.UUID(STAGE)
    )
    assert d.triggers[4] == ReminderTrigger(type="birthday_reminder", at=time(9), days_before=3)
    assert d.triggers[5] == Trigger(type="inbound_webhook")

    assert [s.type for s in d.steps] == [
        "send_sms",
        "wait",
        "if_else",
        "send_email",
        "wait",
        "add_tag",
        "move_stage",
        "goal",
        "end",
    ]
    first = d.step("text_them")
    assert isinstance(first, SendSms)
    assert first.body.startswith("Hi {{contact.first_name}}")
    wait = d.step("wait_5")
    assert isinstance(wait, Wait)
    assert wait.wait.duration == timedelta(minutes=5)
    check = d.step("check")
    assert isinstance(check, IfElse)
    assert check.branches[0].name == "replied"
    assert check.else_ == "email_them"
    reply = d.step("wait_reply")
    assert isinstance(reply, Wait)
    assert reply.wait.kind == "event"
    assert reply.timeout_next == "tag"
    goal = d.step("goal")
    assert isinstance(goal, Goal)
    assert goal.event.event == "tag.added"
    assert goal.then == END
    assert d.index["email_them"] == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.body = "changed"  # type: ignore[misc]


def test_lead_nurture_flow_follows_list_order_and_overrides() -> None:
    d = parse_definition(lead_nurture())

    assert d.next_of("text_them") == "wait_5"
    assert d.next_of("check") == "email_them"  # the else branch
    assert d.next_of("goal") == "done"  # reached in the normal flow, a goal carries on
    assert d.next_of("done") is None
    check = d.step("check")
    assert isinstance(check, IfElse)
    assert d.after("check", check.branches[0].next) == "done"
    goal = d.step("goal")
    assert isinstance(goal, Goal)
    assert d.after("goal", goal.then) is None  # then: end finishes the enrollment
    with pytest.raises(KeyError):
        d.step("nope")


def test_lead_nurture_round_trips_through_its_json_form() -> None:
    d = parse_definition(lead_nurture())
    document = definition_json(d)

    assert json.loads(json.dumps(document)) == document  # plain JSON, nothing Python-specific
    assert parse_definition(document) == d
    assert document["triggers"][1] == {"type": "tag_added", "tag": "lead"}
    assert document["steps"][4]["wait"] == {
        "event": "contact.replied",
        "channel": "sms",
        "timeout": {"days": 1},
    }
    assert document["settings"]["send_window"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "from": "08:00",
        "to": "20:00",
    }


# --- every step and trigger type, round-tripped


EVERYTHING: dict[str, Any] = {
    "name": "Everything",
    "settings": {"allow_reentry": True, "time_zone": "location", "send_window": {"days": ["sat", "sun"]}},
    "triggers": [
        {"type": "contact_created"},
        {"type": "contact_changed", "fields": ["email", "custom.budget", "email"]},
        {"type": "contact_changed"},
        {"type": "tag_added"},
        {"type": "tag_removed", "tag": "old"},
        {"type": "dnd_changed", "channel": "all"},
        {"type": "note_added"},
        {"type": "task_added"},
        {"type": "task_completed"},
        {"type": "customer_replied"},
        {"type": "opportunity_created", "pipeline_id": PIPELINE},
        {"type": "opportunity_status_changed", "status": "won", "pipeline_id": PIPELINE},
        {"type": "custom_date_reminder", "field": "custom.renewal", "days_after": 2, "at": "18:30"},
        {
            "type": "inbound_webhook",
            "filters": {"any": [{"field": "contact.tags", "op": "has_any", "value": ["a"]}]},
        },
        {"type": "manual"},
    ],
    "steps": [
        {"id": "sms", "type": "send_sms", "body": "Line one\nLine two", "marketing": True},
        {"id": "mail", "type": "send_email", "subject": "Hi", "html": "<b>x</b>"},
        {
            "id": "notify",
            "type": "internal_notification",
            "channel": "in_app",
            "body": "New lead",
            "user_id": USER,
        },
        {"id": "tag", "type": "add_tag", "tags": ["A", "b"]},
        {"id": "untag", "type": "remove_tag", "tags": ["c"]},
        {"id": "city", "type": "update_field", "field": "city", "value": "Berlin"},
        {"id": "clear", "type": "update_field", "field": "website", "value": None},
        {"id": "budget", "type": "update_field", "field": "custom.budget", "value": 5000.5},
        {"id": "colours", "type": "update_field", "field": "custom.colours", "value": ["red", "blue"]},
        {"id": "owner", "type": "assign_user", "user_id": USER},
        {"id": "note", "type": "add_note", "body": "Called"},
        {"id": "task", "type": "create_task", "title": "Call back", "body": "Ask", "due_in": {"days": 1}},
        {"id": "task2", "type": "create_task", "title": "Plain", "assignee_id": USER},
        {
            "id": "deal",
            "type": "create_opportunity",
            "pipeline_id": PIPELINE,
            "stage_id": STAGE,
            "name": "Deal",
            "value": 150000,
            "status": "won",
        },
        {"id": "stage", "type": "move_stage", "pipeline_id": PIPELINE, "stage_id": STAGE},
        {"id": "won", "type": "set_opportunity_status", "status": "lost"},
        {"id": "other", "type": "add_to_workflow", "workflow_id": WORKFLOW},
        {"id": "leave", "type": "remove_from_workflow", "workflow_id": WORKFLOW},
        {
            "id": "hook",
            "type": "webhook",
            "url": "https://crm.example.com/leads/{{contact.id}}",
            "method": "PUT",
            "headers": {"X-Api-Key": "k", "Accept": "application/json"},
            "body": {"email": "{{contact.email}}", "score": 3, "tags": ["a", None], "ok": True},
        },
        {"id": "get", "type": "webhook", "url": "http://example.com/ping", "method": "GET"},
        {"id": "dnd", "type": "dnd", "channel": "sms", "on": False},
        {
            "id": "pause",
            "type": "wait",
            "wait": {"until_time": "09:00", "weekday": "mon", "zone": "location"},
        },
        {
            "id": "branch",
            "type": "if_else",
            "branches": [
                {
                    "name": "vip",
                    "when": {"all": [{"field": "contact.tags", "op": "has_any", "value": ["vip"]}]},
                },
                {
                    "name": "won",
                    "when": {"all": [{"field": "opportunity.status", "op": "eq", "value": "won"}]},
                },
            ],
        },
        {
            "id": "ab",
            "type": "split",
            "paths": [{"percent": 30, "next": "b_side"}, {"percent": 70}],
        },
        {"id": "a_side", "type": "send_sms", "body": "A", "next": "goal"},
        {"id": "b_side", "type": "send_sms", "body": "B"},
        {"id": "goal", "type": "goal", "event": {"event": "opportunity.stage_reached", "stage_id": STAGE}},
        {"id": "finish", "type": "end"},
    ],
}


def test_every_step_and_trigger_type_round_trips() -> None:
    d = parse_definition(copy.deepcopy(EVERYTHING))

    assert {s.type for s in d.steps} >= {
        "send_sms",
        "send_email",
        "internal_notification",
        "add_tag",
        "remove_tag",
        "update_field",
        "assign_user",
        "add_note",
        "create_task",
        "create_opportunity",
        "move_stage",
        "set_opportunity_status",
        "add_to_workflow",
        "remove_from_workflow",
        "webhook",
        "dnd",
        "wait",
        "if_else",
        "split",
        "goal",
        "end",
    }
    document = definition_json(d)
    assert parse_definition(json.loads(json.dumps(document))) == d
    assert definition_json(parse_definition(document)) == document


def test_values_are_normalised_and_typed() -> None:
    d = parse_definition(copy.deepcopy(EVERYTHING))

    assert d.settings.time_zone == "location"
    assert d.settings.allow_reentry
    assert d.settings.send_window == ResumeWindow(frozenset({5, 6}), time(0), time(0))  # whole days
    changed = d.triggers[1]
    assert isinstance(changed, ContactChangedTrigger)
    assert changed.fields == ("email", "custom.budget")  # duplicates dropped, order kept
    assert d.triggers[12] == ReminderTrigger(
        type="custom_date_reminder", field="custom.renewal", days_after=2, at=time(18, 30)
    )
    tag = d.step("tag")
    assert isinstance(tag, AddTag)
    assert tag.tags == ("a", "b")
    colours = d.step("colours")
    assert isinstance(colours, UpdateField)
    assert colours.value == ("red", "blue")
    task = d.step("task")
    assert isinstance(task, CreateTask)
    assert task.due_in is not None
    assert task.due_in.kind == "duration"
    hook = d.step("hook")
    assert isinstance(hook, Webhook)
    assert hook.headers == (("X-Api-Key", "k"), ("Accept", "application/json"))
    body = hook.body
    assert body == {"email": "{{contact.email}}", "score": 3, "tags": ["a", None], "ok": True}
    body["score"] = 99
    assert hook.body["score"] == 3  # each read is a fresh copy
    get = d.step("get")
    assert isinstance(get, Webhook)
    assert get.method == "GET"
    assert get.body is None
    mail = d.step("mail")
    assert isinstance(mail, SendEmail)
    assert mail.body is None
    assert mail.html == "<b>x</b>"
    split = d.step("ab")
    assert isinstance(split, Split)
    assert split.percentages == [30, 70]
    assert split.paths == (SplitPath(percent=30, next="b_side"), SplitPath(percent=70))
    assert d.after("ab", split.paths[1].next) == "a_side"  # a path without next carries on
    assert d.next_of("a_side") == "goal"  # next overrides the following step
    branch = d.step("branch")
    assert isinstance(branch, IfElse)
    assert branch.else_ is None
    assert d.next_of("branch") == "ab"  # no else: carry on with the following step
    assert d.after("branch", branch.branches[0].next) == "ab"


def test_yaml_reads_an_unquoted_on_key_as_true_and_it_still_works() -> None:
    doc = load_yaml(
        """
        name: DND
        triggers: [{type: manual}]
        steps:
          - {id: quiet, type: dnd, channel: email, on: true}
        """
    )
    assert True in doc["steps"][0]  # what PyYAML does with `on:`

    step = parse_definition(doc).step("quiet")

    assert step == SetDnd(id="quiet", channel="email", on=True)


def test_yaml_dates_in_a_wait_are_kept_as_iso_text() -> None:
    doc = load_yaml(
        """
        name: Until
        triggers: [{type: manual}]
        steps:
          - {id: hold, type: wait, wait: {until: 2026-12-24T09:00:00-05:00}}
        """
    )
    d = parse_definition(doc)

    document = definition_json(d)
    assert document["steps"][0]["wait"] == {"until": "2026-12-24T09:00:00-05:00"}
    assert parse_definition(document) == d


def test_a_workflow_of_one_end_step_and_many_steps_up_to_the_limit() -> None:
    assert parse_definition(doc_with({"id": "x", "type": "end"})).next_of("x") is None
    steps = [sms(f"s{i}") for i in range(MAX_STEPS)]
    d = parse_definition(doc_with(*steps))
    assert len(d.steps) == MAX_STEPS
    assert d.next_of(f"s{MAX_STEPS - 1}") is None


# --- errors: the document and its settings


def test_a_document_must_be_an_object() -> None:
    assert errors_of(["not", "a", "mapping"]) == {"": "a workflow definition must be an object"}


def test_top_level_members_are_all_checked_at_once() -> None:
    errors = errors_of({"name": " ", "colour": "red", "settings": [], "triggers": [], "steps": {}})

    assert set(errors) == {"/name", "/colour", "/settings", "/triggers", "/steps"}
    assert "manual" in errors["/triggers"]
    assert errors["/colour"] == "is not a member of a workflow definition"


def test_missing_members_are_required() -> None:
    errors = errors_of({})
    assert errors == {
        "/name": "is required",
        "/triggers": errors_of({"triggers": None})["/triggers"],
        "/steps": "must be a list of 1 to 200 steps",
    }


@pytest.mark.parametrize(
    ("settings", "pointer"),
    [
        ({"time_zone": "utc"}, "/settings/time_zone"),
        ({"allow_reentry": "yes"}, "/settings/allow_reentry"),
        ({"stop_on_replies": True}, "/settings/stop_on_replies"),
        ({"send_window": "9-5"}, "/settings/send_window"),
        ({"send_window": {"days": []}}, "/settings/send_window/days"),
        ({"send_window": {"days": ["mon", "someday"]}}, "/settings/send_window/days/1"),
        ({"send_window": {"from": "09:00", "to": "09:00"}}, "/settings/send_window/to"),
        ({"send_window": {"from": "9am", "to": "17:00"}}, "/settings/send_window/from"),
        ({"send_window": {"from": "09:00"}}, "/settings/send_window/to"),
        ({"send_window": {"from": "09:00", "to": "17:00", "tz": "x"}}, "/settings/send_window/tz"),
    ],
)
def test_bad_settings_point_at_the_member(settings: dict[str, Any], pointer: str) -> None:
    assert pointer in errors_of(doc_with(sms("a"), settings=settings))


def test_a_yaml_time_read_as_a_number_gets_a_hint() -> None:
    doc = load_yaml("name: x\ntriggers: [{type: birthday_reminder, at: 9:30}]\nsteps: [{id: a, type: end}]")
    assert doc["triggers"][0]["at"] == 570  # YAML 1.1 sexagesimal
    assert "quote it in YAML" in errors_of(doc)["/triggers/0/at"]


def test_an_overnight_send_window_is_allowed_and_round_trips() -> None:
    doc = doc_with(sms("a"), settings={"send_window": {"days": ["fri"], "from": "22:00", "to": "06:00"}})
    d = parse_definition(doc)
    assert d.settings.send_window == ResumeWindow(frozenset({4}), time(22), time(6))
    assert parse_definition(definition_json(d)) == d


# --- errors: triggers


@pytest.mark.parametrize(
    ("trigger", "pointer"),
    [
        ("contact_created", "/triggers/0"),
        ({"type": "form_submitted"}, "/triggers/0/type"),
        ({"tag": "x"}, "/triggers/0/type"),
        ({"type": "tag_added", "tag": 5}, "/triggers/0/tag"),
        ({"type": "tag_added", "tag": "x" * 101}, "/triggers/0/tag"),
        ({"type": "tag_added", "tags": ["x"]}, "/triggers/0/tags"),
        ({"type": "customer_replied", "channel": "fax"}, "/triggers/0/channel"),
        ({"type": "dnd_changed", "channel": "pigeon"}, "/triggers/0/channel"),
        ({"type": "contact_changed", "fields": []}, "/triggers/0/fields"),
        ({"type": "contact_changed", "fields": ["email", "shoe_size"]}, "/triggers/0/fields/1"),
        ({"type": "contact_changed", "fields": ["custom.Bad Key"]}, "/triggers/0/fields/0"),
        ({"type": "pipeline_stage_changed", "stage_id": STAGE}, "/triggers/0/pipeline_id"),
        ({"type": "opportunity_created", "pipeline_id": "not-a-uuid"}, "/triggers/0/pipeline_id"),
        ({"type": "opportunity_created", "pipeline_id": 7}, "/triggers/0/pipeline_id"),
        ({"type": "opportunity_status_changed", "status": "closed"}, "/triggers/0/status"),
        ({"type": "birthday_reminder"}, "/triggers/0/at"),
        ({"type": "birthday_reminder", "at": "25:00"}, "/triggers/0/at"),
        (
            {"type": "birthday_reminder", "at": "09:00", "days_before": 1, "days_after": 1},
            "/triggers/0/days_after",
        ),
        ({"type": "birthday_reminder", "at": "09:00", "days_before": 400}, "/triggers/0/days_before"),
        ({"type": "birthday_reminder", "at": "09:00", "days_before": True}, "/triggers/0/days_before"),
        ({"type": "custom_date_reminder", "at": "09:00", "field": "birthday"}, "/triggers/0/field"),
        (
            {"type": "contact_created", "filters": {"all": [{"field": "x.y", "op": "eq"}]}},
            "/triggers/0/filters",
        ),
    ],
)
def test_bad_triggers_point_at_the_member(trigger: Any, pointer: str) -> None:
    errors = errors_of(doc_with(sms("a"), triggers=[trigger]))
    assert any(p == pointer or p.startswith(pointer + "/") for p in errors), errors


def test_too_many_triggers() -> None:
    assert "/triggers" in errors_of(doc_with(sms("a"), triggers=[{"type": "manual"}] * 21))


# --- errors: steps


def test_step_ids_are_checked_and_unique() -> None:
    errors = step_errors(sms("a"), sms("a"), sms("Bad Id"), sms("end"), {"type": "end"})

    assert errors == {
        "/steps/1/id": "is already the id of step 0",
        "/steps/2/id": "must be 1 to 64 characters of a-z, 0-9, _ and -",
        "/steps/3/id": '"end" is reserved: it names the end of the workflow',
        "/steps/4/id": "must be 1 to 64 characters of a-z, 0-9, _ and -",
    }


def test_steps_must_be_objects_of_a_known_type_with_known_members() -> None:
    errors = step_errors("text", {"id": "a", "type": "send_fax"}, sms("b", colour="red"), sms("c", body=None))

    assert errors == {
        "/steps/0": "must be an object with an id and a type",
        "/steps/1/type": errors["/steps/1/type"],
        "/steps/2/colour": "is not a member of a send_sms step",
        "/steps/3/body": "is required",
    }
    assert errors["/steps/1/type"].startswith("must be one of send_sms, send_email")


def test_too_many_steps() -> None:
    assert errors_of(doc_with(*[sms(f"s{i}") for i in range(MAX_STEPS + 1)])) == {
        "/steps": "must be a list of 1 to 200 steps"
    }


@pytest.mark.parametrize(
    ("step", "pointer"),
    [
        ({"type": "send_sms", "body": "x" * 1601}, "/steps/0/body"),
        ({"type": "send_sms", "body": "   "}, "/steps/0/body"),
        ({"type": "send_sms", "body": "hi", "marketing": "yes"}, "/steps/0/marketing"),
        ({"type": "send_email", "subject": "Hi"}, "/steps/0/body"),
        ({"type": "send_email", "subject": "Two\nlines", "body": "x"}, "/steps/0/subject"),
        ({"type": "send_email", "body": "x"}, "/steps/0/subject"),
        ({"type": "internal_notification", "channel": "fax", "body": "x"}, "/steps/0/channel"),
        (
            {"type": "internal_notification", "channel": "sms", "body": "x", "user_id": "me"},
            "/steps/0/user_id",
        ),
        ({"type": "add_tag", "tags": []}, "/steps/0/tags"),
        ({"type": "add_tag", "tags": "vip"}, "/steps/0/tags"),
        ({"type": "remove_tag", "tags": ["ok", ""]}, "/steps/0/tags/1"),
        ({"type": "update_field", "field": "tags", "value": "x"}, "/steps/0/field"),
        ({"type": "update_field", "field": 5, "value": "x"}, "/steps/0/field"),
        ({"type": "webhook"}, "/steps/0/url"),
        ({"type": "send_email", "subject": "Hi", "body": 5}, "/steps/0/body"),
        ({"type": "update_field", "field": "city"}, "/steps/0/value"),
        ({"type": "update_field", "field": "city", "value": 5}, "/steps/0/value"),
        ({"type": "update_field", "field": "custom.sizes", "value": ["s", 2]}, "/steps/0/value"),
        ({"type": "update_field", "field": "custom.score", "value": float("nan")}, "/steps/0/value"),
        ({"type": "update_field", "field": "custom.score", "value": {"a": 1}}, "/steps/0/value"),
        ({"type": "assign_user"}, "/steps/0/user_id"),
        ({"type": "add_note", "body": 42}, "/steps/0/body"),
        (
            {"type": "create_task", "title": "t", "due_in": {"event": "tag.added", "tag": "x"}},
            "/steps/0/due_in",
        ),
        ({"type": "create_task", "title": "t", "due_in": "tomorrow"}, "/steps/0/due_in"),
        ({"type": "create_task", "title": "t", "due_in": {"days": -1}}, "/steps/0/due_in/days"),
        (
            {"type": "create_opportunity", "pipeline_id": PIPELINE, "stage_id": STAGE, "value": -1},
            "/steps/0/value",
        ),
        (
            {"type": "create_opportunity", "pipeline_id": PIPELINE, "stage_id": STAGE, "value": 1.5},
            "/steps/0/value",
        ),
        ({"type": "create_opportunity", "pipeline_id": PIPELINE}, "/steps/0/stage_id"),
        ({"type": "set_opportunity_status", "status": "closed"}, "/steps/0/status"),
        ({"type": "add_to_workflow", "workflow_id": "x"}, "/steps/0/workflow_id"),
        ({"type": "webhook", "url": "ftp://example.com/x"}, "/steps/0/url"),
        ({"type": "webhook", "url": "/relative"}, "/steps/0/url"),
        ({"type": "webhook", "url": "https://x.test", "method": "DELETE"}, "/steps/0/method"),
        ({"type": "webhook", "url": "https://x.test", "method": "GET", "body": {"a": 1}}, "/steps/0/body"),
        ({"type": "webhook", "url": "https://x.test", "body": {"a": {1, 2}}}, "/steps/0/body"),
        ({"type": "webhook", "url": "https://x.test", "body": "x" * 70_000}, "/steps/0/body"),
        ({"type": "webhook", "url": "https://x.test", "headers": ["a"]}, "/steps/0/headers"),
        (
            {"type": "webhook", "url": "https://x.test", "headers": {"Bad Name": "x"}},
            "/steps/0/headers/Bad Name",
        ),
        ({"type": "webhook", "url": "https://x.test", "headers": {"Host": "evil"}}, "/steps/0/headers/Host"),
        (
            {"type": "webhook", "url": "https://x.test", "headers": {"X-A": "a\r\nB: c"}},
            "/steps/0/headers/X-A",
        ),
        ({"type": "webhook", "url": "https://x.test", "headers": {"X/Y": "a"}}, "/steps/0/headers/X~1Y"),
        ({"type": "dnd", "channel": "sms"}, "/steps/0/on"),
        ({"type": "dnd", "channel": "pager", "on": True}, "/steps/0/channel"),
        ({"type": "wait"}, "/steps/0/wait"),
        ({"type": "wait", "wait": {"minutes": -5}}, "/steps/0/wait/minutes"),
        ({"type": "wait", "wait": {"minutes": 5}, "timeout_next": "a"}, "/steps/0/timeout_next"),
        (
            {"type": "wait", "wait": {"event": "tag.added", "tag": "x"}, "timeout_next": "a"},
            "/steps/0/timeout_next",
        ),
        ({"type": "if_else", "branches": []}, "/steps/0/branches"),
        ({"type": "if_else", "branches": ["x"]}, "/steps/0/branches/0"),
        ({"type": "if_else", "branches": [{"name": "n"}]}, "/steps/0/branches/0/when"),
        ({"type": "if_else", "branches": [{"when": {"all": []}}]}, "/steps/0/branches/0/name"),
        ({"type": "goal", "event": {"minutes": 5}}, "/steps/0/event"),
        (
            {"type": "goal", "event": {"event": "tag.added", "tag": "x", "timeout": {"days": 1}}},
            "/steps/0/event",
        ),
        ({"type": "goal"}, "/steps/0/event"),
        ({"type": "split", "paths": [{"percent": 50}, {"percent": 40}]}, "/steps/0/paths"),
        ({"type": "split", "paths": [{"percent": 50}, 50]}, "/steps/0/paths/1"),
        (
            {"type": "split", "paths": [{"percent": 50}, {"percent": 50, "weight": 1}]},
            "/steps/0/paths/1/weight",
        ),
        ({"type": "split", "paths": [{"percent": 50, "next": 5}, {"percent": 50}]}, "/steps/0/paths/0/next"),
        ({"type": "goto"}, "/steps/0/step"),
        ({"type": "goto", "step": "end"}, "/steps/0/step"),
        ({"type": "goto", "step": "a", "next": "a"}, "/steps/0/next"),
        ({"type": "end", "next": "a"}, "/steps/0/next"),
        ({"type": "send_sms", "body": "x", "next": "Not An Id"}, "/steps/0/next"),
    ],
)
def test_bad_step_members_point_at_the_member(step: dict[str, Any], pointer: str) -> None:
    errors = step_errors({"id": "s", **step}, sms("a"))
    assert pointer in errors, errors


def test_branch_names_are_unique_and_branches_limited() -> None:
    when = {"all": [{"field": "contact.email", "op": "exists"}]}
    twins = step_errors(
        {
            "id": "s",
            "type": "if_else",
            "branches": [{"name": "Hot", "when": when}, {"name": "hot", "when": when}],
        }
    )
    assert twins == {"/steps/0/branches/1/name": "another branch of this step has the same name"}
    many = step_errors(
        {"id": "s", "type": "if_else", "branches": [{"name": f"b{i}", "when": when} for i in range(11)]}
    )
    assert many == {"/steps/0/branches": "must be a list of 1 to 10 items"}
    unknown = step_errors(
        {"id": "s", "type": "if_else", "branches": [{"name": "b", "when": when, "then": "x"}]}
    )
    assert unknown == {"/steps/0/branches/0/then": "is not a member of a branch"}


def test_references_must_name_existing_steps() -> None:
    errors = step_errors(
        sms("a", next="nowhere"),
        {"id": "g", "type": "goto", "step": "missing"},
        {
            "id": "w",
            "type": "wait",
            "wait": {"event": "contact.replied", "timeout": {"days": 1}},
            "timeout_next": "zz",
        },
        {"id": "f", "type": "goal", "event": {"event": "tag.added", "tag": "x"}, "then": "gone"},
    )
    assert errors == {
        "/steps/0/next": 'names no step: there is no step with id "nowhere"',
        "/steps/1/step": 'names no step: there is no step with id "missing"',
        "/steps/2/timeout_next": 'names no step: there is no step with id "zz"',
        "/steps/3/then": 'names no step: there is no step with id "gone"',
    }


def test_a_goto_cannot_target_itself() -> None:
    assert step_errors(sms("a"), {"id": "g", "type": "goto", "step": "g"}) == {
        "/steps/1/step": "a goto cannot go to itself"
    }


def test_all_errors_of_a_document_come_together() -> None:
    doc = lead_nurture()
    doc["triggers"][1]["tag"] = ""
    doc["steps"][0]["body"] = ""
    doc["steps"][1]["wait"] = {"minutes": 0}
    doc["steps"][2]["else"] = "missing"

    errors = errors_of(doc)

    assert {"/triggers/1/tag", "/steps/0/body", "/steps/2/else"} <= set(errors)
    assert any(p.startswith("/steps/1/wait") for p in errors)


# --- errors: the graph


def test_a_step_nothing_leads_to_is_unreachable() -> None:
    errors = step_errors(sms("a"), {"id": "stop", "type": "end"}, sms("orphan"))
    assert errors == {"/steps/2": '"orphan" is never reached: no step, branch or goto leads to it'}


def test_a_step_after_a_goto_is_unreachable_unless_something_leads_there() -> None:
    loop_back = [
        sms("a"),
        {"id": "w", "type": "wait", "wait": {"days": 1}},
        {"id": "g", "type": "goto", "step": "a"},
    ]
    assert "/steps/3" in step_errors(*loop_back, sms("after"))
    assert parse_definition(doc_with(*loop_back))  # a paced loop is fine
    branch = {"id": "b", "type": "if_else", "branches": [{"name": "x", "when": EMAIL_SET, "next": "after"}]}
    errors = step_errors(sms("a"), branch, {"id": "g", "type": "goto", "step": "a"}, sms("after"))
    assert set(errors) == {"/steps/2/step"}  # reachable now, but the loop a -> b -> g has no wait


def test_a_goal_is_reached_by_its_event_and_leads_on() -> None:
    d = parse_definition(
        doc_with(
            sms("a"),
            {"id": "stop", "type": "end"},
            {"id": "goal", "type": "goal", "event": {"event": "tag.added", "tag": "won"}, "then": "thanks"},
            sms("skipped_by_goal", next="end"),
            sms("thanks"),
        )
    )
    assert d.next_of("goal") == "skipped_by_goal"
    assert d.after("skipped_by_goal", None) is None  # next: end
    assert d.after("goal", "thanks") == "thanks"


def test_a_loop_through_a_goto_without_a_wait_points_at_the_goto() -> None:
    errors = step_errors(sms("a"), sms("b"), {"id": "back", "type": "goto", "step": "a"})
    loop = "makes a loop with no wait step in it (a, b, back): a contact would go round it forever"
    assert errors == {"/steps/2/step": loop}


def test_a_loop_through_next_points_at_the_link_going_back() -> None:
    errors = step_errors(sms("a"), sms("b", next="a"))
    assert set(errors) == {"/steps/1/next"}
    assert errors["/steps/1/next"].startswith("makes a loop")
    self_loop = step_errors(sms("a", next="a"))
    assert set(self_loop) == {"/steps/0/next"}


def test_a_loop_through_branches_and_splits_is_found() -> None:
    when = {"all": [{"field": "contact.email", "op": "exists"}]}
    via_branch = step_errors(
        sms("a"), {"id": "b", "type": "if_else", "branches": [{"name": "x", "when": when, "next": "a"}]}
    )
    assert set(via_branch) == {"/steps/1/branches/0/next"}
    via_else = step_errors(
        sms("a"), {"id": "b", "type": "if_else", "branches": [{"name": "x", "when": when}], "else": "a"}
    )
    assert set(via_else) == {"/steps/1/else"}
    via_split = step_errors(
        sms("a"), {"id": "s", "type": "split", "paths": [{"percent": 50, "next": "a"}, {"percent": 50}]}
    )
    assert set(via_split) == {"/steps/1/paths/0/next"}


def test_a_wait_anywhere_in_the_loop_paces_it() -> None:
    timeout_loop = doc_with(
        sms("a"),
        {
            "id": "w",
            "type": "wait",
            "wait": {"event": "contact.replied", "timeout": {"hours": 1}},
            "timeout_next": "a",
        },
    )
    d = parse_definition(timeout_loop)
    wait = d.step("w")
    assert isinstance(wait, Wait)
    assert d.after("w", wait.timeout_next) == "a"
    assert d.next_of("w") is None


def test_a_goal_jumping_back_is_not_a_loop() -> None:
    # a -> g -> b in the flow; the goal's jump back to a happens only when its event does.
    d = parse_definition(
        doc_with(
            sms("a"),
            {"id": "g", "type": "goal", "event": {"event": "tag.added", "tag": "x"}, "then": "a"},
            sms("b"),
        )
    )
    assert d.next_of("g") == "b"
    goal = d.step("g")
    assert isinstance(goal, Goal)
    assert d.after("g", goal.then) == "a"


# --- equality and construction in code


def test_definitions_compare_by_meaning_and_keep_their_authored_form() -> None:
    one = parse_definition(doc_with({"id": "w", "type": "wait", "wait": {"hours": 1}}))
    two = parse_definition(doc_with({"id": "w", "type": "wait", "wait": {"minutes": 60}}))

    assert one == two  # the same wait, however it was written
    assert definition_json(one)["steps"][0]["wait"] == {"hours": 1}
    assert definition_json(two)["steps"][0]["wait"] == {"minutes": 60}


def test_a_definition_built_in_code_answers_flow_questions() -> None:
    built = Definition(
        "Built",
        parse_definition(doc_with(sms("a"))).settings,
        (Trigger(type="manual"),),
        (SendSms(id="a", body="hi", next="c"), Goto(id="b", step="a"), End(id="c")),
    )
    assert built.next_of("a") == "c"
    assert built.next_of("b") == "a"
    assert built.next_of("c") is None
    assert built.after("a", END) is None
    assert definition_json(built)["steps"][1] == {"id": "b", "type": "goto", "step": "a"}
