"""Rate limits per credential by plan tier, with RateLimit-* headers and 429 + Retry-After."""

from __future__ import annotations

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, assert_problem, bearer, new_tenant, open_api, unique_email

FREE_BURST = 10


@pytest.fixture
async def free_tenant(container: Container) -> Tenant:
    return await new_tenant(container, PlanTier.FREE)


async def test_a_free_key_gets_a_burst_of_ten(api: httpx.AsyncClient, free_tenant: Tenant) -> None:
    remaining = []
    for _ in range(FREE_BURST):
        response = await api.get(f"{API}/location", headers=free_tenant.headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == str(FREE_BURST)
        remaining.append(int(response.headers["ratelimit-remaining"]))

    refused = await api.get(f"{API}/location", headers=free_tenant.headers)

    assert remaining == list(range(FREE_BURST - 1, -1, -1))
    assert_problem(refused, 429, "too_many_requests")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == str(FREE_BURST)
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1
    assert "w=60" in refused.headers["ratelimit-policy"]


async def test_limits_are_per_credential(
    api: httpx.AsyncClient, container: Container, free_tenant: Tenant
) -> None:
    _, second_key = await container.api_keys().create(
        Actor.operator(), "second", location_id=free_tenant.location_id
    )
    other = await new_tenant(container, PlanTier.FREE)
    for _ in range(FREE_BURST + 1):
        await api.get(f"{API}/location", headers=free_tenant.headers)
    assert_problem(await api.get(f"{API}/location", headers=free_tenant.headers), 429)

    same_location = await api.get(f"{API}/location", headers=bearer(second_key))
    other_tenant = await api.get(f"{API}/location", headers=other.headers)

    for response in (same_location, other_tenant):
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-remaining"] == str(FREE_BURST - 1)


async def test_higher_tiers_get_bigger_buckets(api: httpx.AsyncClient, container: Container) -> None:
    pro = await new_tenant(container, PlanTier.PRO)
    enterprise = await new_tenant(container, PlanTier.ENTERPRISE)

    pro_response = await api.get(f"{API}/location", headers=pro.headers)
    enterprise_response = await api.get(f"{API}/location", headers=enterprise.headers)

    assert pro_response.headers["ratelimit-limit"] == "50"
    assert enterprise_response.headers["ratelimit-limit"] == "100"


async def test_errors_count_against_the_limit_too(api: httpx.AsyncClient, free_tenant: Tenant) -> None:
    for _ in range(FREE_BURST):
        response = await api.post(f"{API}/api-keys", json={"name": ""}, headers=free_tenant.headers)
        assert response.status_code == 422
        assert "ratelimit-remaining" in response.headers

    assert_problem(await api.get(f"{API}/location", headers=free_tenant.headers), 429)


async def test_public_endpoints_are_limited_per_client_address(container: Container) -> None:
    async with open_api(container) as api:
        for _ in range(FREE_BURST):
            response = await api.post(
                f"{API}/auth/login", json={"email": unique_email(), "password": "whatever-pass"}
            )
            assert response.status_code == 401, response.text
        refused = await api.post(f"{API}/auth/login", json={"email": unique_email(), "password": "x" * 12})

        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    async with open_api(container) as elsewhere:
        other = await elsewhere.post(
            f"{API}/auth/login", json={"email": unique_email(), "password": "x" * 12}
        )
        assert other.status_code == 401
