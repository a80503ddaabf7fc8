"""The workflow simulation: a definition run against a virtual clock for one contact, nothing sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ghl_core.workflows.definition import parse_definition
from ghl_core.workflows.simulation import SimulatedEvent, describe, matches, simulate
from ghl_core.workflows.waits import parse_wait

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# A Monday, 10:00 in New York.
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def nurture(**settings: Any) -> dict[str, Any]:
    return {
        "name": "Lead nurture",
        "settings": settings,
        "triggers": [{"type": "contact_created"}],
        "steps": [
            {"id": "text_them", "type": "send_sms", "body": "Hi {{contact.first_name}}"},
            {"id": "wait_5", "type": "wait", "wait": {"minutes": 5}},
            {"id": "wait_day", "type": "wait", "wait": {"until_time": "09:00"}},
            {
                "id": "check",
                "type": "if_else",
                "branches": [
                    {
                        "name": "replied",
                        "when": {
                            "all": [{"field": "last_message.direction", "op": "eq", "value": "inbound"}]
                        },
                        "next": "thank",
                    }
                ],
                "else": "email_them",
            },
            {"id": "email_them", "type": "send_email", "subject": "Still interested?", "body": "Hello"},
            {"id": "tag", "type": "add_tag", "tags": ["nurtured"], "next": "end"},
            {"id": "thank", "type": "send_sms", "body": "Thanks for your reply"},
        ],
    }


def contact(**fields: Any) -> dict[str, Any]:
    return {"first_name": "Ada", "phone": "+13125550100", "email": "ada@example.com", "tags": [], **fields}


def run(document: dict[str, Any], who: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return simulate(
        parse_definition(document),
        who or contact(),
        start=kwargs.pop("start", START),
        contact_zone=kwargs.pop("contact_zone", NY),
        location_zone=kwargs.pop("location_zone", NY),
        render=lambda text: text.replace("{{contact.first_name}}", "Ada"),
        **kwargs,
    )


def steps(result: Any) -> list[tuple[str | None, str]]:
    return [(e.step_id, e.outcome) for e in result.timeline]


def test_the_lead_nurture_sequence_without_a_reply() -> None:
    result = run(nurture())
    assert result.finished == "completed"
    sends = [e for e in result.timeline if e.outcome == "would_send"]
    assert [(e.step_id, e.at) for e in sends] == [
        ("text_them", START),
        # 10:05 -> the next 09:00 in New York (14:00 UTC in winter)
        ("email_them", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
    ]
    assert sends[0].detail.endswith("Hi Ada")
    assert "nurtured" in result.contact["tags"]
    assert describe(result)[0]["at"] == START.isoformat()


def test_a_reply_takes_the_replied_branch_or_stops_the_enrollment() -> None:
    reply = SimulatedEvent(START + timedelta(hours=2), "contact.replied", {"channel": "sms"})
    branched = run(nurture(), events=[reply])
    assert ("check", "branch") in steps(branched)
    assert [e.step_id for e in branched.timeline if e.outcome == "would_send"] == ["text_them", "thank"]

    stopped = run(nurture(stop_on_reply=True), events=[reply])
    assert stopped.finished == "stopped"
    assert stopped.timeline[-1].at == reply.at
    assert [e.step_id for e in stopped.timeline if e.outcome == "would_send"] == ["text_them"]


def test_do_not_disturb_and_missing_addresses_skip_sends() -> None:
    result = run(nurture(), contact(dnd_channels={"sms": True}, email=None))
    outcomes = {
        e.step_id: (e.outcome, e.detail) for e in result.timeline if e.step_id in ("text_them", "email_them")
    }
    assert outcomes["text_them"] == ("skipped", "do-not-disturb is on for sms")
    assert outcomes["email_them"] == ("skipped", "the contact has no email")


def test_the_send_window_holds_a_message_until_it_opens() -> None:
    document = nurture(
        send_window={"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "20:00"}
    )
    saturday_night = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # Saturday 23:00 in New York
    result = run(document, start=saturday_night)
    first = [e for e in result.timeline if e.step_id == "text_them"]
    assert first[0].outcome == "waiting"
    assert first[1].at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # Monday 08:00 EST


def test_waiting_for_an_event_resumes_on_it_or_times_out() -> None:
    document = {
        "name": "Ask",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "ask", "type": "send_sms", "body": "Want a call?"},
            {
                "id": "listen",
                "type": "wait",
                "wait": {"event": "contact.replied", "channel": "sms", "timeout": {"days": 2}},
                "timeout_next": "nudge",
            },
            {"id": "yes", "type": "add_tag", "tags": ["answered"], "next": "end"},
            {"id": "nudge", "type": "send_sms", "body": "Just checking in"},
        ],
    }
    answered = run(
        document, events=[SimulatedEvent(START + timedelta(hours=5), "contact.replied", {"channel": "sms"})]
    )
    assert "answered" in answered.contact["tags"]
    assert ("listen", "resumed") in steps(answered)
    other_channel = run(
        document, events=[SimulatedEvent(START + timedelta(hours=5), "contact.replied", {"channel": "email"})]
    )
    silent = run(document)
    for result in (other_channel, silent):
        assert "answered" not in result.contact["tags"]
        nudge = next(e for e in result.timeline if e.step_id == "nudge")
        assert nudge.at == START + timedelta(days=2)


def test_a_goal_event_jumps_to_the_goal_wherever_the_contact_waits() -> None:
    document = {
        "name": "Convert",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "wait_week", "type": "wait", "wait": {"days": 7}},
            {"id": "pitch", "type": "send_sms", "body": "Buy now"},
            {
                "id": "won",
                "type": "goal",
                "event": {"event": "tag.added", "tag": "customer"},
                "then": "welcome",
            },
            {"id": "welcome", "type": "send_sms", "body": "Welcome aboard"},
        ],
    }
    bought = SimulatedEvent(START + timedelta(days=3), "tag.added", {"tag": "customer"})
    result = run(document, events=[bought])
    assert ("won", "goal") in steps(result)
    assert [e.step_id for e in result.timeline if e.outcome == "would_send"] == ["welcome"]
    assert next(e for e in result.timeline if e.step_id == "welcome").at == bought.at


def test_split_tests_are_deterministic_per_contact() -> None:
    document = {
        "name": "AB",
        "triggers": [{"type": "manual"}],
        "steps": [
            {
                "id": "ab",
                "type": "split",
                "paths": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}],
            },
            {"id": "a", "type": "add_tag", "tags": ["variant-a"], "next": "end"},
            {"id": "b", "type": "add_tag", "tags": ["variant-b"]},
        ],
    }
    seen = {tuple(run(document, key=f"wf:{i}").contact["tags"]) for i in range(40)}
    assert seen == {("variant-a",), ("variant-b",)}
    assert run(document, key="wf:7").contact["tags"] == run(document, key="wf:7").contact["tags"]


def test_field_and_dnd_steps_change_what_later_conditions_see() -> None:
    document = {
        "name": "Fields",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "budget", "type": "update_field", "field": "custom.budget", "value": 9000},
            {"id": "city", "type": "update_field", "field": "city", "value": "Austin"},
            {"id": "quiet", "type": "dnd", "channel": "all", "on": True},
            {"id": "untag", "type": "remove_tag", "tags": ["cold"]},
            {
                "id": "check",
                "type": "if_else",
                "branches": [
                    {
                        "name": "big",
                        "when": {"field": "contact.custom.budget", "op": "gt", "value": 5000},
                        "next": "ping",
                    }
                ],
            },
            {"id": "ping", "type": "send_sms", "body": "Big budget!"},
            {"id": "hook", "type": "webhook", "url": "https://crm.example/hook", "method": "POST"},
            {"id": "note", "type": "add_note", "body": "done"},
        ],
    }
    result = run(document, contact(tags=["cold", "lead"]))
    assert result.contact["custom_fields"]["budget"] == 9000
    assert result.contact["city"] == "Austin"
    assert result.contact["tags"] == ["lead"]
    assert ("check", "branch") in steps(result)
    assert ("ping", "skipped") in steps(result)  # do-not-disturb was switched on just before
    assert ("hook", "would_send") in steps(result)
    assert ("note", "would_do") in steps(result)


def test_a_loop_with_a_wait_runs_until_the_horizon() -> None:
    document = {
        "name": "Forever",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "nap", "type": "wait", "wait": {"days": 1}},
            {"id": "again", "type": "goto", "step": "nap"},
        ],
    }
    assert run(document).finished == "horizon"
    hourly = {
        "name": "Often",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "nap", "type": "wait", "wait": {"hours": 1}},
            {"id": "again", "type": "goto", "step": "nap"},
        ],
    }
    assert run(hourly).finished == "step_limit"


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        (NY, datetime(2026, 3, 7, 20, 0, tzinfo=UTC)),  # the evening before spring forward
        (NY, datetime(2026, 10, 31, 20, 0, tzinfo=UTC)),  # the evening before fall back
        (BERLIN, datetime(2026, 3, 28, 20, 0, tzinfo=UTC)),
        (BERLIN, datetime(2026, 10, 24, 20, 0, tzinfo=UTC)),
    ],
)
def test_wait_until_nine_fires_at_nine_local_across_clock_changes(zone: ZoneInfo, start: datetime) -> None:
    result = run(nurture(), start=start, contact_zone=zone)
    email = next(e for e in result.timeline if e.step_id == "email_them")
    local = email.at.astimezone(zone)
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == (start.astimezone(zone) + timedelta(days=1)).date()


def test_location_zone_waits_and_event_matching() -> None:
    document = {
        "name": "Office hours",
        "triggers": [{"type": "manual"}],
        "steps": [{"id": "nine", "type": "wait", "wait": {"until_time": "09:00", "zone": "location"}}],
    }
    result = run(document, contact_zone=NY, location_zone=BERLIN)
    resumed = next(e for e in result.timeline if e.outcome == "resumed")
    assert resumed.at.astimezone(BERLIN).hour == 9
    spec = parse_wait({"event": "tag.added", "tag": "vip"}, "/w")
    assert matches(spec, SimulatedEvent(START, "tag.added", {"tag": "VIP"}))
    assert not matches(spec, SimulatedEvent(START, "tag.added", {"tag": "other"}))
    assert not matches(spec, SimulatedEvent(START, "contact.replied", {}))
    with pytest.raises(ValueError, match="aware"):
        simulate(
            parse_definition(document),
            contact(),
            start=datetime(2026, 1, 1),
            contact_zone=NY,
            location_zone=NY,
        )


def test_an_event_wait_that_nothing_answers_and_has_no_timeout_ends_the_simulation() -> None:
    document = {
        "name": "Forever waiting",
        "triggers": [{"type": "manual"}],
        "steps": [{"id": "listen", "type": "wait", "wait": {"event": "contact.replied"}}],
    }
    result = run(document)
    assert result.finished == "horizon"
    assert result.timeline[-1].outcome == "waiting"
