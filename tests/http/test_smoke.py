from __future__ import annotations

import httpx

from support import Tenant


async def test_location_with_api_key(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/api/v1/location", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(tenant.location_id)
    assert response.headers["ratelimit-limit"] == "100"
