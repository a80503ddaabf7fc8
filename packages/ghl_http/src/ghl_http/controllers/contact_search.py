"""POST /api/v1/contacts/search: free-text search plus filters, sorted, keyset-paginated."""

from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from ghl_core.contacts.search import ContactSearchService
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas_contact_search import SearchIn, SearchOut


class ContactSearchController(Controller):
    path = "/contacts/search"
    tags = ["contacts"]

    @post("/", status_code=HTTP_200_OK, summary="Search and filter contacts")
    async def search_contacts(
        self,
        data: JSONBody[SearchIn],
        actor: NamedDependency[Actor],
        contact_search: NamedDependency[ContactSearchService],
    ) -> SearchOut:
        return SearchOut.of(await contact_search.search(actor, data.model_dump()))
