"""The roles file (infra/access/roles.yaml) as every tool reads it."""

from __future__ import annotations

import pytest
import yaml

from smartrehab.access.roles import RolesError, load_access
from smartrehab.settings import REPO_ROOT

ROLES = REPO_ROOT / "infra" / "access" / "roles.yaml"
CATALOG = REPO_ROOT / "catalog"


def test_the_eight_roles_of_the_issue_the_dashboards_service_account_and_one_demo_user_each():
    access = load_access(ROLES, CATALOG)
    assert {r.name_zh for r in access.roles.values()} == {
        "局领导", "所领导", "分析员", "研究员", "数据工程", "系统管理员", "安全管理员", "审计管理员", "看板服务"}
    assert [k for k, r in access.roles.items() if not r.person] == ["data_engineer", "bi_service"]
    assert {u.role for u in access.demo_users} == set(access.roles)
    assert not access.roles["data_engineer"].person
    # 等保 level 3: three separate administrators, none of whom sees business rows or holds another's powers.
    admins = [access.roles[k] for k in ("system_admin", "security_admin", "audit_admin")]
    assert all(r.scope == "none" for r in admins)
    assert [("security" in r.superset_extra, "action_log" in r.superset_extra) for r in admins] == [
        (False, False), (True, False), (False, True)]
    # Only the pipeline's service account reads the restricted layers on the SQL endpoint.
    assert [k for k, r in access.roles.items() if "restricted" in r.sql_endpoint] == ["data_engineer"]
    assert [k for k, r in access.roles.items() if "write" in r.sql_endpoint] == ["data_engineer"]


def test_a_centre_scoped_role_is_one_group_per_centre_of_the_code_table():
    access = load_access(ROLES, CATALOG)
    centre_groups = [g for g in access.groups() if g.role.key == "centre_leader"]
    assert [g.centre for g in centre_groups] == list(access.centres) and "BJ01" in access.centres
    assert access.group("centre_leader-BJ01").superset_name == "所领导-BJ01"
    assert {u.group_cn for u in access.demo_users if u.centre} == {"centre_leader-BJ01", "centre_leader-BJ02"}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["demo_users"].append({"uid": "suo.bj01", "role": "analyst"}), "uid used twice"),
    (lambda d: d["demo_users"].append({"uid": "x", "role": "centre_leader", "centre": "ZZ99"}),
     "needs a centre of catalog/code_tables/centre.csv"),
    (lambda d: d["demo_users"].append({"uid": "y", "role": "analyst", "centre": "BJ01"}), "not centre-scoped"),
    (lambda d: d["roles"]["analyst"].update(scope="region"), "scope 'region'"),
    (lambda d: d["roles"]["analyst"]["superset"].update(extra=["can_everything"]), "unknown"),
    (lambda d: d["demo_users"].append({"uid": "z", "role": "boss"}), "role 'boss' is not defined"),
])
def test_mistakes_in_the_roles_file_are_named(tmp_path, change, message):
    doc = yaml.safe_load(ROLES.read_text(encoding="utf-8"))
    change(doc)
    bad = tmp_path / "roles.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RolesError, match=message):
        load_access(bad, CATALOG)
