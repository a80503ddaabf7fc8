"""Embedding ghl_core with no database: the in-memory adapters, a location, contacts, tags, a workflow
simulation, a message to the local outbox and the published workflow greeting a new contact.

Run it with `python examples/embed_core.py`. See docs/embedding.md.
"""

from __future__ import annotations

import asyncio

from ghl_adapters.memory.container import build_memory_container
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation

NURTURE = {
    "name": "Welcome",
    "triggers": [{"type": "contact_created"}],
    "steps": [
        {"id": "hello", "type": "send_sms", "body": "Hi {{contact.first_name}}, welcome!"},
        {"id": "pause", "type": "wait", "wait": {"days": 1}},
        {"id": "tag", "type": "add_tag", "tags": ["welcomed"]},
    ],
}


async def main() -> dict[str, object]:
    app = build_memory_container()
    operator = Actor.operator()

    agency = await app.tenancy.create_agency(operator, "Example Agency")
    location = await app.tenancy.create_location(
        operator, NewLocation("Example Dental", timezone="America/Chicago", tier=PlanTier.PRO), agency.id
    )
    # The operator acting inside the location: the scope every repository is held to.
    here = Actor.operator_at(location.id)

    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101", "tags": ["lead"]})
    bob = await app.contacts.create(here, {"first_name": "Bob", "email": "bob@example.com"})
    tagged = await app.tag_service.bulk(here, {"contact_ids": [str(ann.id), str(bob.id)], "add": ["vip"]})

    workflow = await app.workflows.create(here, NURTURE)
    simulation = await app.workflows.simulate(here, workflow.id, {"contact_id": str(ann.id)})

    message, _ = await app.message_sending.send(here, ann.id, {"channel": "sms", "body": "See you soon"})

    # Published, the workflow reacts to new contacts: the event leaves through the job queue (inline
    # here), enrols the contact and runs its first step, which sends to the outbox.
    await app.workflows.publish(here, workflow.id)
    await app.contacts.create(here, {"first_name": "Cid", "phone": "+13125550103"})
    await app.queue.run_pending()  # inline already; harmless when nothing is left
    outbox = await app.inbox.outbox(here, PageRequest())

    summary: dict[str, object] = {
        "location": location.name,
        "contacts": [c.first_name for c in (await app.contacts.list(here, PageRequest())).items],
        "tagged": tagged.changed,
        "simulation": [entry.step_id for entry in simulation.timeline],
        "finished": simulation.finished,
        "outbox": [m.body for m in outbox.items],
        "message": str(message.id),
        "failed_jobs": [f"{job.kind}: {error}" for job, error in app.queue.failed],
    }
    return summary


if __name__ == "__main__":
    for key, value in asyncio.run(main()).items():
        print(f"{key}: {value}")
