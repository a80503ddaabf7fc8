"""The permission matrix: agency roles, location roles (with agency widening), API key scopes."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghl_core.shared.errors import NotFound, PermissionDenied
from ghl_core.shared.scope import ScopeKind, TenantScope
from ghl_core.tenancy.models import AgencyRole, LocationRole
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission

ALL = {p.value for p in Permission}
AGENCY_ONLY = {"locations:write", "users:read", "users:write"}
LOCATION_ALL = ALL - AGENCY_ONLY
LOCATION_USER = {
    "locations:read",
    "contacts:read",
    "contacts:write",
    "opportunities:read",
    "opportunities:write",
    "conversations:read",
    "conversations:write",
    "campaigns:read",
    "campaigns:write",
    "workflows:read",
    "workflows:write",
    "webhooks:read",
}

AGENCY = uuid.uuid4()
LOCATION = uuid.uuid4()
USER = uuid.uuid4()


def names(actor: Actor) -> set[str]:
    return {p.value for p in actor.permissions()}


def test_permission_count_is_what_the_matrix_below_assumes() -> None:
    assert len(ALL) == 22  # providers:write, admins only
    assert len(LOCATION_ALL) == 19


@pytest.mark.parametrize(
    ("role", "expected"),
    [(AgencyRole.OWNER, ALL), (AgencyRole.ADMIN, ALL), (AgencyRole.USER, {"locations:read"})],
)
def test_agency_level_user(role: AgencyRole, expected: set[str]) -> None:
    assert names(Actor(ActorKind.USER, USER, AGENCY, agency_role=role)) == expected


def test_user_without_any_role_has_nothing() -> None:
    assert names(Actor(ActorKind.USER, USER, AGENCY)) == set()
    assert names(Actor(ActorKind.USER, USER, AGENCY, location_id=LOCATION)) == set()


@pytest.mark.parametrize("agency_role", list(AgencyRole))
@pytest.mark.parametrize("location_role", [*LocationRole, None])
def test_location_token(agency_role: AgencyRole, location_role: LocationRole | None) -> None:
    actor = Actor(
        ActorKind.USER,
        USER,
        AGENCY,
        location_id=LOCATION,
        agency_role=agency_role,
        location_role=location_role,
    )
    if agency_role in (AgencyRole.OWNER, AgencyRole.ADMIN) or location_role is LocationRole.ADMIN:
        expected = LOCATION_ALL
    elif location_role is LocationRole.USER:
        expected = LOCATION_USER
    else:
        expected = set()
    assert names(actor) == expected
    # A location credential never carries an agency-only permission, whatever the roles.
    assert not names(actor) & AGENCY_ONLY


@pytest.mark.parametrize("scope", list(Permission))
def test_api_key_with_one_scope(scope: Permission) -> None:
    actor = Actor(ActorKind.API_KEY, uuid.uuid4(), AGENCY, location_id=LOCATION, scopes=frozenset({scope}))
    assert names(actor) == ({scope.value} - AGENCY_ONLY)


@given(st.frozensets(st.sampled_from(list(Permission))))
def test_api_key_permissions_are_its_location_scopes(scopes: frozenset[Permission]) -> None:
    actor = Actor(ActorKind.API_KEY, uuid.uuid4(), AGENCY, location_id=LOCATION, scopes=scopes)
    assert names(actor) == {s.value for s in scopes} - AGENCY_ONLY


def test_operator_has_everything() -> None:
    op = Actor.operator()
    assert names(op) == ALL
    assert op.is_operator
    assert op.credential_id == "operator"
    assert op.id is None
    assert op.agency_id is None


def test_actor_scope_for_each_kind() -> None:
    assert Actor.operator().scope == TenantScope(ScopeKind.OPERATOR)
    loc = Actor(ActorKind.API_KEY, uuid.uuid4(), AGENCY, location_id=LOCATION)
    assert loc.scope == TenantScope(ScopeKind.LOCATION, location_id=LOCATION)
    token = Actor(ActorKind.USER, USER, AGENCY, location_id=LOCATION, agency_role=AgencyRole.OWNER)
    assert token.scope == TenantScope.location(LOCATION)
    agency = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.USER)
    assert agency.scope == TenantScope(ScopeKind.AGENCY, agency_id=AGENCY)


def test_scope_constructors() -> None:
    assert TenantScope.anonymous() == TenantScope(ScopeKind.ANONYMOUS, None, None)
    assert TenantScope.operator().agency_id is None


def test_require() -> None:
    member = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.USER)
    member.require(Permission.LOCATIONS_READ)
    with pytest.raises(PermissionDenied, match="'users:read'"):
        member.require(Permission.USERS_READ)


def test_require_location() -> None:
    key = Actor(
        ActorKind.API_KEY,
        uuid.uuid4(),
        AGENCY,
        location_id=LOCATION,
        scopes=frozenset({Permission.CONTACTS_READ}),
    )
    assert key.require_location(Permission.CONTACTS_READ) == LOCATION
    with pytest.raises(PermissionDenied, match="contacts:write"):
        key.require_location(Permission.CONTACTS_WRITE)
    owner = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.OWNER)
    with pytest.raises(PermissionDenied, match="location credential"):
        owner.require_location(Permission.CONTACTS_READ)
    with pytest.raises(PermissionDenied, match="location credential"):
        Actor.operator().require_location(Permission.CONTACTS_READ)


def test_require_agency() -> None:
    owner = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.OWNER)
    assert owner.require_agency(Permission.USERS_WRITE) == AGENCY
    member = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.USER)
    assert member.require_agency(Permission.LOCATIONS_READ) == AGENCY
    with pytest.raises(PermissionDenied, match="users:write"):
        member.require_agency(Permission.USERS_WRITE)
    with pytest.raises(PermissionDenied, match="name their agency"):
        Actor.operator().require_agency(Permission.USERS_WRITE)
    token = Actor(ActorKind.USER, USER, AGENCY, location_id=LOCATION, agency_role=AgencyRole.OWNER)
    with pytest.raises(PermissionDenied, match="agency-level"):
        token.require_agency(Permission.LOCATIONS_READ)
    orphan = Actor(ActorKind.USER, USER, None, agency_role=AgencyRole.OWNER)
    with pytest.raises(PermissionDenied, match="agency-level"):
        orphan.require_agency(Permission.LOCATIONS_READ)


def test_check_same_agency() -> None:
    owner = Actor(ActorKind.USER, USER, AGENCY, agency_role=AgencyRole.OWNER)
    owner.check_same_agency(AGENCY)
    with pytest.raises(NotFound):
        owner.check_same_agency(uuid.uuid4())
    Actor.operator().check_same_agency(uuid.uuid4())
