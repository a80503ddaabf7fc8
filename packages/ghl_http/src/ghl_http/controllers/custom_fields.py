"""/api/v1/custom-fields: the location's custom field definitions."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.custom_fields.services import CustomFieldService
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas_custom_fields import CustomFieldIn, CustomFieldOut, CustomFieldPatch


class CustomFieldsController(Controller):
    path = "/custom-fields"
    tags = ["custom fields"]

    @get("/", summary="List the location's custom field definitions, oldest first")
    async def list_custom_fields(
        self, actor: NamedDependency[Actor], custom_field_service: NamedDependency[CustomFieldService]
    ) -> list[CustomFieldOut]:
        return [CustomFieldOut.of(d) for d in await custom_field_service.list(actor)]

    @post("/", status_code=HTTP_201_CREATED, summary="Define a custom field")
    async def create_custom_field(
        self,
        data: JSONBody[CustomFieldIn],
        actor: NamedDependency[Actor],
        custom_field_service: NamedDependency[CustomFieldService],
    ) -> CustomFieldOut:
        return CustomFieldOut.of(
            await custom_field_service.create(actor, data.model_dump(exclude_unset=True))
        )

    @get("/{field_id:uuid}", summary="Get a custom field definition")
    async def get_custom_field(
        self,
        field_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        custom_field_service: NamedDependency[CustomFieldService],
    ) -> CustomFieldOut:
        return CustomFieldOut.of(await custom_field_service.get(actor, field_id))

    @patch("/{field_id:uuid}", summary="Change a label, the options or the type (stored values follow)")
    async def update_custom_field(
        self,
        field_id: FromPath[uuid.UUID],
        data: JSONBody[CustomFieldPatch],
        actor: NamedDependency[Actor],
        custom_field_service: NamedDependency[CustomFieldService],
    ) -> CustomFieldOut:
        changed = await custom_field_service.update(actor, field_id, data.model_dump(exclude_unset=True))
        return CustomFieldOut.of(changed)

    @delete("/{field_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a definition and its values")
    async def delete_custom_field(
        self,
        field_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        custom_field_service: NamedDependency[CustomFieldService],
    ) -> None:
        await custom_field_service.delete(actor, field_id)
