"""Erasing a contact erases what its workflow enrollments kept about it (step outputs such as a
webhook's answer, step-run details and errors); the enrollments stay, anonymous, for the statistics."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.models import EnrollmentStatus
from jobs_kit import run_jobs
from support import Tenant, make_container, new_tenant


@pytest.fixture(scope="module")
async def container(settings: Settings) -> AsyncIterator[Container]:
    built = make_container(settings.model_copy(update={"webhooks_allow_private": True}))
    try:
        yield built
    finally:
        await close_container(built)


@pytest.fixture
def echo() -> Iterator[str]:
    """A local endpoint answering with the body it was sent (the contact's e-mail among it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/echo"
    finally:
        server.shutdown()
        server.server_close()


async def _kept(container: Container, enrollment_id: uuid.UUID) -> tuple[Any, list[tuple[Any, ...]]]:
    async with container.engines().owner.connect() as conn:
        outputs = await conn.scalar(
            text("SELECT outputs FROM workflow_enrollments WHERE id = :e"), {"e": enrollment_id}
        )
        runs = (
            await conn.execute(
                text(
                    "SELECT step_id, status, outcome, detail, output FROM workflow_step_runs "
                    "WHERE enrollment_id = :e ORDER BY started_at, step_id"
                ),
                {"e": enrollment_id},
            )
        ).all()
    return outputs, [tuple(r) for r in runs]


async def test_erasing_a_contact_erases_its_workflow_outputs(container: Container, echo: str) -> None:
    tenant: Tenant = await new_tenant(container)
    actor = Actor.operator_at(tenant.location_id)
    workflows = container.workflows()
    workflow = await workflows.create(
        actor,
        {
            "name": "Echo",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "call", "type": "webhook", "url": echo, "body": {"email": "{{ contact.email }}"}},
                {"id": "note", "type": "add_note", "body": "called for {{ contact.first_name }}"},
            ],
        },
    )
    await workflows.publish(actor, workflow.id)
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    erased = await container.contacts().create(actor, {"first_name": "Ada", "email": email})
    kept = await container.contacts().create(actor, {"first_name": "Bo", "email": "bo-" + email})
    await workflows.enroll(actor, workflow.id, {"contact_ids": [str(erased.id), str(kept.id)]})
    await run_jobs(container, queues=["events", "workflows", "messages"])

    from ghl_core.shared.pagination import PageRequest

    page = await workflows.enrollments(actor, workflow.id, PageRequest(limit=10))
    by_contact = {e.contact_id: e for e in page.items}
    assert {e.status for e in page.items} == {EnrollmentStatus.COMPLETED}
    outputs, runs = await _kept(container, by_contact[erased.id].id)
    assert outputs["call"]["body"] == {"email": email}  # the answer echoed the contact's e-mail
    assert [r[:3] for r in runs] == [("call", "done", "http_200"), ("note", "done", "done")]

    await container.contacts().erase(actor, erased.id)

    outputs, runs = await _kept(container, by_contact[erased.id].id)
    assert outputs == {}
    assert email not in json.dumps([list(map(str, r)) for r in runs])
    assert [r[:3] for r in runs] == [("call", "done", "http_200"), ("note", "done", "done")]
    assert all(r[4] is None for r in runs)
    # Another contact's enrollment keeps its outputs.
    other_outputs, other_runs = await _kept(container, by_contact[kept.id].id)
    assert other_outputs["call"]["body"] == {"email": "bo-" + email}
    assert other_runs[0][4] is not None
