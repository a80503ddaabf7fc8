"""The search service's own checks, before any unit of work opens."""

from __future__ import annotations

import uuid

import pytest

from ghl_core.contacts.search import ContactSearchService, SearchUnitOfWork
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor


def no_unit_of_work(scope: TenantScope) -> SearchUnitOfWork:
    raise AssertionError("a refused request opens no unit of work")


@pytest.mark.parametrize("total", ["no", 0, None])
async def test_total_must_be_a_boolean(total: object) -> None:
    service = ContactSearchService(no_unit_of_work)
    with pytest.raises(ValidationFailed) as refused:
        await service.search(Actor.operator_at(uuid.uuid4()), {"total": total})
    assert [e.pointer for e in refused.value.errors] == ["/total"]
