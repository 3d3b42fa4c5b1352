"""Users, passwords and groups against a real slapd (the shared, unmodified one)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import ldap3
import pytest

from authsvc.ldap.service import LDAPService
from authsvc.login.backends import LDAPLoginBackend
from tests.components.slapd import MANY_GROUPS, SERVICE_DN, SERVICE_PASSWORD, Slapd, user_dn
from tests.ldap.fixtures import HOSTILE_NAMES, SPECIAL_PASSWORD, ldap_service, ldap_settings, require_slapd

pytestmark = pytest.mark.slapd
MakeService = Callable[..., LDAPService]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def service_factory(directory_server: Slapd) -> Iterator[MakeService]:
    made: list[LDAPService] = []

    def make(**overrides: object) -> LDAPService:
        service = ldap_service(ldap_settings(directory_server, **overrides))
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def test_finds_a_user_with_canonical_name_uid_and_server(directory: LDAPService, directory_server: Slapd) -> None:
    user = directory.find_user("alice")
    assert user is not None
    assert (user.dn, user.username, user.server) == (user_dn("alice"), "alice", directory_server.url)
    assert UUID.match(user.uid)
    # The directory's spelling names the user, whatever case and spacing was typed.
    assert [directory.find_user(n).username for n in ("ALICE", " alice ", "Alice")] == ["alice"] * 3  # type: ignore[union-attr]


@pytest.mark.parametrize(("typed", "expected"), HOSTILE_NAMES, ids=lambda v: repr(v)[:24] if isinstance(v, str) else v)
def test_hostile_names_never_match_another_entry(directory: LDAPService, typed: str, expected: str | None) -> None:
    user = directory.find_user(typed)
    assert (user.username if user else None) == expected


@pytest.mark.parametrize("spelling", ["\uff41\uff4c\uff49\uff43\uff45", "AL\u0130CE"], ids=["fullwidth", "U+0130"])
def test_spellings_only_the_directory_folds_are_not_exact(directory: LDAPService, spelling: str) -> None:
    # slapd's caseIgnoreMatch (RFC 4518) takes these for "alice"; authsvc compares with the
    # stored value up to case and spaces only, and /login refuses them (LDAPLoginBackend).
    user = directory.find_user(spelling)
    assert user is not None and user.username == "alice" and not user.exact
    assert directory.find_user(" ALICE ").exact  # type: ignore[union-attr]
    verdict = LDAPLoginBackend(directory).authenticate(spelling, "alice-pw")
    assert (verdict.known, verdict.identity, verdict.subject) == (False, None, "alice")


def test_login_by_mail_is_exact_for_the_mail_value(service_factory: MakeService) -> None:
    by_mail = service_factory(user_filter="(&(objectClass=inetOrgPerson)(|(uid={username})(mail={username})))")
    user = by_mail.find_user("Alice@Example.org")
    assert user is not None and user.exact and user.username == "alice"
    assert LDAPLoginBackend(by_mail).authenticate("alice@example.org", "alice-pw").identity is not None


def test_password_checks(directory: LDAPService) -> None:
    alice = directory.find_user("alice")
    special = directory.find_user("special")
    assert alice is not None and special is not None
    assert directory.check_password(alice.dn, "alice-pw")
    assert not directory.check_password(alice.dn, "alice-pw ")
    assert not directory.check_password(alice.dn, "bob-pw")
    assert not directory.check_password(alice.dn, "alice-pw\x00")
    # Empty: LDAP would answer an unauthenticated bind with success (RFC 4513 5.1.2).
    assert not directory.check_password(alice.dn, "")
    assert not directory.check_password("", "alice-pw")
    # Passed as is: no escaping, no SASLprep.
    assert directory.check_password(special.dn, SPECIAL_PASSWORD)
    assert not directory.check_password(special.dn, SPECIAL_PASSWORD.replace("é", "e"))


def test_login_backend_answers_alike_for_unknown_users_and_wrong_passwords(directory: LDAPService) -> None:
    backend = LDAPLoginBackend(directory)
    ok = backend.authenticate("carol", "carol-pw")
    assert ok.identity is not None and ok.identity.groups == ("ops",) and ok.identity.source == "ldap"
    assert ok.identity.username == "carol" and UUID.match(ok.identity.uid)
    assert backend.authenticate("carol", "alice-pw") == backend.authenticate("carol", "x")
    wrong, unknown = backend.authenticate("carol", "x"), backend.authenticate("nobody", "x")
    assert (wrong.known, wrong.identity, unknown.known, unknown.identity) == (True, None, False, None)
    assert not directory.check_password(backend.decoy_dn, "x")  # the decoy bind fails like a wrong password


def test_ambiguous_filter_matches_are_refused(service_factory: MakeService) -> None:
    loose = service_factory(user_filter="(|(uid={username})(objectClass=inetOrgPerson))")
    assert loose.find_user("alice") is None


def test_entry_without_the_username_attribute_is_refused(service_factory: MakeService) -> None:
    # The token must carry the directory's value, never the typed text.
    service = service_factory(username_attribute="displayName")
    assert service.find_user("alice") is None


def test_direct_groups_by_member(directory: LDAPService) -> None:
    assert _groups(directory, "alice") == ("dev",)
    assert _groups(directory, "carol") == ("ops",)
    assert _groups(directory, "weird,name") == ("quirky",)  # its DN holds an escaped comma
    assert _groups(directory, "paren(x)") == ("quirky",)  # its DN holds filter metacharacters
    assert _groups(directory, "star*") == ()


@pytest.mark.parametrize(
    ("depth", "expected"), [(0, ("ops",)), (1, ("admins", "ops")), (2, ("admins", "ops", "platform"))]
)
@pytest.mark.parametrize("membership", ["member", "memberOf"])
def test_nested_groups_to_the_depth_limit(
    service_factory: MakeService, membership: str, depth: int, expected: tuple[str, ...]
) -> None:
    service = service_factory(nested_depth=depth, group_membership=membership)
    assert _groups(service, "carol") == expected
    deeper = service_factory(nested_depth=10, group_membership=membership)
    assert _groups(deeper, "carol") == ("admins", "ops", "platform")  # stops when nothing new comes


@pytest.mark.parametrize("membership", ["member", "memberOf"])
def test_the_user_in_500_groups(service_factory: MakeService, membership: str) -> None:
    service = service_factory(group_membership=membership, nested_depth=1, page_size=100)
    groups = _groups(service, "many")
    assert len(groups) == MANY_GROUPS
    assert groups[0] == "grp-000" and groups[-1] == f"grp-{MANY_GROUPS - 1:03d}"
    assert LDAPLoginBackend(service).authenticate("many", "many-pw").identity is not None


def test_a_server_that_caps_answers_is_paged_through() -> None:
    # slapd answers at most 100 entries per search unless the client pages (like AD's MaxPageSize).
    require_slapd()
    with Slapd(many_groups=MANY_GROUPS, sizelimit="size.soft=100 size.hard=100 size.prtotal=unlimited") as capped:
        service = ldap_service(ldap_settings(capped, page_size=50, nested_depth=1))
        assert len(_groups(service, "many")) == MANY_GROUPS
        unpaged = ldap3.Connection(capped.url, SERVICE_DN, SERVICE_PASSWORD, auto_bind=True)
        unpaged.search(capped.groups_dn, "(objectClass=groupOfNames)", attributes=["cn"])
        assert unpaged.result["result"] == 4 and len(unpaged.entries) == 100  # the cap is real
        unpaged.unbind()
        service.close()


def test_group_prefix_and_memberof_outside_group_base(service_factory: MakeService) -> None:
    prefixed = service_factory(group_prefix="ldap:")
    assert _groups(prefixed, "alice") == ("ldap:dev",)
    elsewhere = service_factory(group_membership="memberOf", group_base="ou=services,dc=example,dc=org")
    assert _groups(elsewhere, "alice") == ()


def test_in_chain_filter_is_sent_as_is(service_factory: MakeService) -> None:
    # OpenLDAP does not implement AD's in-chain rule: the filter is undefined there and matches
    # nothing. The point here: the request is well-formed and failure-free; AD resolves it.
    service = service_factory(in_chain=True)
    assert _groups(service, "carol") == ()


def test_ready(directory: LDAPService) -> None:
    assert directory.ready()


def _groups(service: LDAPService, username: str) -> tuple[str, ...]:
    user = service.find_user(username)
    assert user is not None, username
    return service.resolver.groups_of(user)
