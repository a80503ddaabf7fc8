"""/api/v1/contacts: the location's contacts (the location comes from the credential)."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.contacts.models import DuplicatePolicy
from ghl_core.contacts.services import ContactService
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_contacts import (
    ContactIn,
    ContactOut,
    ContactPatch,
    ContactSettingsIO,
    ContactUpsertIn,
    MergeIn,
    UpsertOut,
)


class ContactsController(Controller):
    path = "/contacts"
    tags = ["contacts"]

    @get("/", summary="List contacts, newest first")
    async def list_contacts(
        self,
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[ContactOut]:
        return ListOf[ContactOut].model_validate(page_of(await contacts.list(actor, page), ContactOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Create a contact")
    async def create_contact(
        self,
        data: JSONBody[ContactIn],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactOut:
        return ContactOut.of(await contacts.create(actor, data.model_dump(exclude_unset=True)))

    @post("/upsert", summary="Create or update by e-mail/phone, following the location's duplicate rule")
    async def upsert_contact(
        self,
        data: JSONBody[ContactUpsertIn],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> Response[UpsertOut]:
        contact, created = await contacts.upsert(actor, data.model_dump(exclude_unset=True))
        body = UpsertOut(contact=ContactOut.of(contact), action="created" if created else "updated")
        return Response(body, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @post("/merge", status_code=HTTP_200_OK, summary="Merge two contacts into the survivor")
    async def merge_contacts(
        self,
        data: JSONBody[MergeIn],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactOut:
        return ContactOut.of(await contacts.merge(actor, data.survivor_id, data.loser_id))

    @get("/settings", summary="The location's duplicate rule")
    async def get_settings(
        self, actor: NamedDependency[Actor], contacts: NamedDependency[ContactService]
    ) -> ContactSettingsIO:
        return ContactSettingsIO.of(await contacts.settings(actor))

    @put("/settings", summary="Change the location's duplicate rule")
    async def put_settings(
        self,
        data: JSONBody[ContactSettingsIO],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactSettingsIO:
        policy = DuplicatePolicy(allow_duplicates=data.allow_duplicates, priority=data.duplicate_priority)
        return ContactSettingsIO.of(await contacts.update_settings(actor, policy))

    @get("/{contact_id:uuid}", summary="Get a contact")
    async def get_contact(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactOut:
        return ContactOut.of(await contacts.get(actor, contact_id))

    @patch("/{contact_id:uuid}", summary="Change some fields of a contact (null clears a field)")
    async def update_contact(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ContactPatch],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactOut:
        return ContactOut.of(await contacts.update(actor, contact_id, data.model_dump(exclude_unset=True)))

    @delete("/{contact_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a contact (soft)")
    async def delete_contact(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> None:
        await contacts.delete(actor, contact_id)

    @post(
        "/{contact_id:uuid}/erase",
        status_code=HTTP_204_NO_CONTENT,
        summary="Erase a contact's personal data for good (right to be forgotten)",
    )
    async def erase_contact(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> None:
        await contacts.erase(actor, contact_id)

    @post("/{contact_id:uuid}/restore", status_code=HTTP_200_OK, summary="Restore a deleted contact")
    async def restore_contact(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contacts: NamedDependency[ContactService],
    ) -> ContactOut:
        return ContactOut.of(await contacts.restore(actor, contact_id))
