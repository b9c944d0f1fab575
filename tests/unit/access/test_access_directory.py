"""The embedded directory (smartrehab/access/directory.py): a real slapd on the tests' LDAP port, seeded from
infra/access/roles.yaml, checked with OpenLDAP's own client tools."""

from __future__ import annotations

import stat

import pytest

from smartrehab import services
from smartrehab.access import directory as d
from smartrehab.access.roles import load_access


@pytest.fixture(scope="module")
def access(directory):
    return load_access(directory.access_roles_file, directory.catalog_dir)


def test_every_demo_user_logs_in_with_the_generated_password(directory, access):
    s = directory
    for u in access.demo_users:
        res = d.whoami(s, d.user_dn(s, access, u.uid), d.user_password(s, u.uid))
        assert res.returncode == 0 and res.stdout.strip() == f"dn:{d.user_dn(s, access, u.uid)}", res.stderr
        secret = s.secrets_dir / f"ldap_user_{u.uid}"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_wrong_password_unknown_user_and_anonymous_are_refused(directory, access):
    s = directory
    dn = d.user_dn(s, access, "suo.bj01")
    assert d.whoami(s, dn, "not-the-password").returncode == 49  # invalid credentials
    assert d.whoami(s, f"uid=nobody,{d.people_dn(s)}", "x").returncode == 49
    # An empty password would be an unauthenticated bind: refused by the server (olcRequires authc).
    assert d.whoami(s, dn, "").returncode != 0


def test_group_membership_reaches_the_user_as_memberof(directory, access):
    s = directory
    dn, pw = d.user_dn(s, access, "suo.bj01"), d.user_password(s, "suo.bj01")
    out = d.search(s, dn, pw, d.people_dn(s), "(uid=suo.bj01)", "memberOf", "departmentNumber")
    assert f"memberOf: {d.group_dn(s, 'centre_leader-BJ01')}" in out and "departmentNumber: BJ01" in out
    svc = d.search(s, dn, pw, d.services_dn(s), "(uid=svc.pipeline)", "memberOf")
    assert f"memberOf: {d.group_dn(s, 'data_engineer')}" in svc
    groups = d.search(s, dn, pw, d.groups_dn(s), "(objectClass=groupOfNames)", "cn")
    assert {line.split(": ")[1] for line in groups.splitlines() if line.startswith("cn: ")} == {
        g.cn for g in access.groups()}


def test_passwords_are_never_read_back(directory, access):
    s = directory
    out = d.search(s, d.user_dn(s, access, "sj.admin"), d.user_password(s, "sj.admin"), d.people_dn(s),
                   "(uid=*)", "userPassword")
    assert "userPassword" not in out and "uid=ju.lingdao" in out


def test_runs_on_loopback_with_its_own_config_and_stops(directory):
    s = directory
    assert (s.ldap_dir / "slapd.d" / "cn=config.ldif").exists()
    assert services.status(s)["directory"] == f"up 127.0.0.1:{s.ldap_port}"
    d.stop(s)
    assert not services.port_open("127.0.0.1", s.ldap_port)
    d.start(s, log=lambda _m: None)  # the next tests of the session find it up again
    assert services.port_open("127.0.0.1", s.ldap_port)
