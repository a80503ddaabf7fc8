"""/api/v1/tags (the location's tag list) and /api/v1/contacts/.../tags (tags on contacts)."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.shared.pagination import PageRequest
from ghl_core.tags.services import TagService
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_tags import BulkTagsIn, BulkTagsOut, ContactTagsIn, ContactTagsOut, TagIn, TagOut


class TagsController(Controller):
    path = "/tags"
    tags = ["tags"]

    @get("/", summary="List the location's tags, by name")
    async def list_tags(
        self,
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[TagOut]:
        return ListOf[TagOut].model_validate(page_of(await tag_service.list(actor, page), TagOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Add a tag to the location's list")
    async def create_tag(
        self, data: JSONBody[TagIn], actor: NamedDependency[Actor], tag_service: NamedDependency[TagService]
    ) -> TagOut:
        return TagOut.of(await tag_service.create(actor, data.name))

    @get("/{tag_id:uuid}", summary="Get a tag")
    async def get_tag(
        self,
        tag_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> TagOut:
        return TagOut.of(await tag_service.get(actor, tag_id))

    @patch(
        "/{tag_id:uuid}", summary="Rename a tag on every contact (merges into an existing tag of that name)"
    )
    async def rename_tag(
        self,
        tag_id: FromPath[uuid.UUID],
        data: JSONBody[TagIn],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> TagOut:
        return TagOut.of(await tag_service.rename(actor, tag_id, data.name))

    @delete(
        "/{tag_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a tag, removing it from every contact",
    )
    async def delete_tag(
        self,
        tag_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> None:
        await tag_service.delete(actor, tag_id)


class ContactTagsController(Controller):
    path = "/contacts"
    tags = ["tags"]

    @post("/{contact_id:uuid}/tags", status_code=HTTP_200_OK, summary="Add tags to a contact")
    async def add_contact_tags(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ContactTagsIn],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> ContactTagsOut:
        tags = await tag_service.tag_contact(actor, contact_id, add=data.tags)
        return ContactTagsOut(contact_id=contact_id, tags=tags)

    @delete("/{contact_id:uuid}/tags", status_code=HTTP_200_OK, summary="Remove tags from a contact")
    async def remove_contact_tags(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ContactTagsIn],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> ContactTagsOut:
        tags = await tag_service.tag_contact(actor, contact_id, remove=data.tags)
        return ContactTagsOut(contact_id=contact_id, tags=tags)

    @post(
        "/tags/bulk", status_code=HTTP_200_OK, summary="Add and remove tags on up to 1,000 contacts at once"
    )
    async def bulk_tags(
        self,
        data: JSONBody[BulkTagsIn],
        actor: NamedDependency[Actor],
        tag_service: NamedDependency[TagService],
    ) -> BulkTagsOut:
        return BulkTagsOut.of(await tag_service.bulk(actor, data.model_dump(exclude_unset=True)))
