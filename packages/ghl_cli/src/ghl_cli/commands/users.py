"""`ghl users`: the people who sign in to an agency."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from ghl_cli.errors import reported, with_agency_hint
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, AgencyOption, CursorOption, JsonOption, LimitOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_cli.views import user_view
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, User
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.tenancy.services import NewUser

app = typer.Typer(help="Create and list agency users (built-in sign-in, or Clerk).")

COLUMNS = ("id", "email", "name", "role", "agency_id")


async def create_user(container: Container, data: NewUser, agency_id: uuid.UUID | None) -> User:
    try:
        return await container.tenancy().create_user(Actor.operator(), data, agency_id=agency_id)
    except ValidationFailed as exc:
        raise with_agency_hint(exc) from None


async def list_users(container: Container, limit: int, cursor: str | None) -> Page[User]:
    return await container.tenancy().list_users(Actor.operator(), page_request(limit, cursor))


def parse_grants(values: list[str]) -> tuple[LocationGrant, ...]:
    grants: list[LocationGrant] = []
    errors: list[FieldError] = []
    for i, value in enumerate(values):
        raw_id, _, raw_role = value.partition(":")
        try:
            grants.append(LocationGrant(uuid.UUID(raw_id), LocationRole(raw_role or LocationRole.USER.value)))
        except ValueError:
            errors.append(
                FieldError(f"/locations/{i}", f"'{value}' is not LOCATION_ID or LOCATION_ID:admin|user")
            )
    if errors:
        raise ValidationFailed(errors)
    return tuple(grants)


def read_password(from_stdin: bool, clerk_user_id: str | None) -> str | None:
    """A password never comes from an option value, where shell history and `ps` would keep it."""
    if from_stdin:
        # One line: `printf '%s\n' "$PASSWORD" | ghl users create ...` works, and so does a file.
        return sys.stdin.readline().rstrip("\r\n")
    if clerk_user_id is not None:
        return None
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The user's e-mail address (their sign-in name).")],
    name: Annotated[str, typer.Option("--name", help="The user's display name.")],
    role: Annotated[AgencyRole, typer.Option("--role", help="The user's role in the agency.")] = (
        AgencyRole.USER
    ),
    agency: AgencyOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of stdin instead of prompting for it.",
        ),
    ] = False,
    clerk_user_id: Annotated[
        str | None,
        typer.Option(
            "--clerk-user-id",
            help="Link a Clerk user (user_...): Clerk signs them in, so no password is asked for.",
        ),
    ] = None,
    locations: Annotated[
        list[str] | None,
        typer.Option(
            "--location",
            help="Grant a location: ID, or ID:admin for a location admin (ID:user by default). Repeatable.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a user in an agency. Prompts for a password (hidden) unless --password-stdin or
    --clerk-user-id is given."""
    from ghl_core.tenancy.services import NewUser

    output = Output(json=json_output)
    with reported(output):
        grants = parse_grants(locations or [])
    password = read_password(password_stdin, clerk_user_id)
    data = NewUser(
        email=email, name=name, role=role, password=password, clerk_user_id=clerk_user_id, grants=grants
    )
    with reported(output):
        user = with_services(output, lambda c: create_user(c, data, agency))
    output.record("User created", user_view(user))


@app.command("list")
def list_(
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List users of every agency."""
    show_page(json_output, "Users", COLUMNS, lambda c: list_users(c, limit, cursor), user_view)
