"""/api/v1/smart-lists: saved contact searches of the location, and their contacts."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.shared.pagination import CURSOR_PATTERN, MAX_CURSOR, MAX_LIMIT, PageRequest
from ghl_core.smart_lists.services import SmartListService
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_contact_search import SearchOut, SmartListIn, SmartListOut, SmartListPatch


class SmartListsController(Controller):
    path = "/smart-lists"
    tags = ["smart lists"]

    @get("/", summary="List smart lists, newest first")
    async def list_smart_lists(
        self,
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[SmartListOut]:
        found = await smart_lists.list(actor, page)
        return ListOf[SmartListOut].model_validate(page_of(found, SmartListOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Save a search as a smart list")
    async def create_smart_list(
        self,
        data: JSONBody[SmartListIn],
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
    ) -> SmartListOut:
        return SmartListOut.of(await smart_lists.create(actor, data.model_dump(exclude_unset=True)))

    @get("/{smart_list_id:uuid}", summary="Get a smart list")
    async def get_smart_list(
        self,
        smart_list_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
    ) -> SmartListOut:
        return SmartListOut.of(await smart_lists.get(actor, smart_list_id))

    @patch("/{smart_list_id:uuid}", summary="Rename a smart list or change its search")
    async def update_smart_list(
        self,
        smart_list_id: FromPath[uuid.UUID],
        data: JSONBody[SmartListPatch],
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
    ) -> SmartListOut:
        changed = await smart_lists.update(actor, smart_list_id, data.model_dump(exclude_unset=True))
        return SmartListOut.of(changed)

    @delete("/{smart_list_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a smart list")
    async def delete_smart_list(
        self,
        smart_list_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
    ) -> None:
        await smart_lists.delete(actor, smart_list_id)

    @get("/{smart_list_id:uuid}/contacts", summary="Run a smart list: its contacts, in its sort")
    async def smart_list_contacts(
        self,
        smart_list_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        smart_lists: NamedDependency[SmartListService],
        limit: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page (1 to 100)")
        ] = None,
        cursor: Annotated[
            str | None,
            QueryParameter(
                pattern=CURSOR_PATTERN,
                max_length=MAX_CURSOR,
                description="The next_cursor of the previous page",
            ),
        ] = None,
    ) -> SearchOut:
        return SearchOut.of(await smart_lists.contacts(actor, smart_list_id, limit, cursor))
