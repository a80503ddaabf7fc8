"""A Python client generated from the OpenAPI document by a maintained generator (openapi-python-client)
calls the API served on 127.0.0.1 and gets typed answers: the document is good enough to build on."""

from __future__ import annotations

import asyncio
import importlib
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn

from ghl_adapters.container import Container
from ghl_http.app import create_app
from http_kit import Tenant, open_api

pytestmark = pytest.mark.slow

PACKAGE = "ghl_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# No formatting hooks: the generated code is imported, not read.
CONFIG = f"project_name_override: ghl-generated-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"


@asynccontextmanager
async def served(container: Container) -> AsyncIterator[str]:
    """The app behind uvicorn on a free port of 127.0.0.1, in this test's event loop."""
    app = create_app(container, close_container_on_shutdown=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def generate(document: str, folder: Path) -> None:
    (folder / "openapi.json").write_text(document)
    (folder / "config.yaml").write_text(CONFIG)
    result = subprocess.run(  # noqa: S603 - the generator installed beside this interpreter
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--config",
            str(folder / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / PACKAGE / "client.py").exists(), result.stdout


@contextmanager
def importable(folder: Path) -> Iterator[Any]:
    """`load(name)` imports a module of the generated package; the package is forgotten afterwards."""
    sys.path.insert(0, str(folder))

    def load(name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{name}")

    try:
        yield load
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


async def test_a_generated_client_reads_and_writes_with_typed_results(
    container: Container, tenant: Tenant, tmp_path: Path
) -> None:
    async with open_api(container) as api:
        document = (await api.get("/docs/openapi.json")).text
    generate(document, tmp_path)

    with importable(tmp_path) as load:
        client_module = load("client")
        models = load("models")
        location_current = load("api.location.location_current")
        create_contact = load("api.contacts.contacts_create_contact")
        get_contact = load("api.contacts.contacts_get_contact")

        async with served(container) as base_url:
            client = client_module.AuthenticatedClient(base_url=base_url, token=tenant.api_key)
            async with client:
                location = await location_current.asyncio(client=client)
                created = await create_contact.asyncio(
                    client=client, body=models.ContactIn(first_name="Ada", email="Ada@Example.com")
                )
                fetched = await get_contact.asyncio(client=client, contact_id=created.id)
                missing = await get_contact.asyncio_detailed(client=client, contact_id=uuid.uuid4())

    assert isinstance(location, models.LocationOut)
    assert location.id == tenant.location_id
    assert isinstance(created, models.ContactOut)
    assert created.email == "ada@example.com"
    assert isinstance(fetched, models.ContactOut)
    assert (fetched.id, fetched.first_name) == (created.id, "Ada")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == "not_found"
