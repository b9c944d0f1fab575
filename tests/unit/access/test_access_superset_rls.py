"""Superset roles and RLS rendered from the roles file (smartrehab/access/superset.py); no Superset needed."""

from __future__ import annotations

import yaml

from smartrehab.access import superset as access_superset
from smartrehab.access.roles import load_access
from smartrehab.settings import get_settings


def test_committed_rls_file_is_the_render_of_the_roles_file_and_the_datasets():
    s = get_settings()
    assert access_superset.rls_path(s).read_text(encoding="utf-8") == access_superset.render(s), (
        "superset_assets/access/row_level_security.yaml is stale: run `python -m smartrehab.access.superset`")


def test_deny_by_default_covers_every_dataset_and_exempts_only_see_all_and_centre_roles():
    s = get_settings()
    access = load_access(s.access_roles_file, s.catalog_dir)
    tables = access_superset.datasets(s)
    rules = access_superset.render_rls(access, tables)
    base = [r for r in rules if r["filter_type"] == "Base"]
    assert all(r["clause"] == "1 = 0" for r in base)
    assert sorted(t for r in base for t in r["tables"]) == sorted(t["table"] for t in tables)
    exempt = set(base[0]["roles"])
    assert {"局领导", "分析员", "Admin"} <= exempt
    assert not exempt & {"系统管理员", "安全管理员", "审计管理员"}
    regular = {r["roles"][0]: r for r in rules if r["filter_type"] == "Regular"}
    assert set(regular) == {f"所领导-{c}" for c in access.centres}
    assert regular["所领导-BJ01"]["clause"] == "centre = 'BJ01'"
    assert regular["所领导-BJ01"]["tables"] == base[0]["tables"]


def test_a_dataset_without_a_centre_column_is_closed_to_centre_leaders():
    s = get_settings()
    access = load_access(s.access_roles_file, s.catalog_dir)
    rules = access_superset.render_rls(access, [{"table": "gold.a", "columns": ["centre", "x"]},
                                                {"table": "gold.b", "columns": ["x"]}])
    no_col = next(r for r in rules if r["tables"] == ["gold.b"])
    assert no_col["filter_type"] == "Base" and not any(n.startswith("所领导") for n in no_col["roles"])
    assert all("gold.b" not in r["tables"] for r in rules if r["filter_type"] == "Regular")


def test_plan_gives_superset_roles_to_people_only():
    s = get_settings()
    names = {r["name"] for r in access_superset.plan(s)["roles"]}
    assert "数据工程" not in names and "研究员" not in names
    assert {"局领导", "分析员", "系统管理员", "安全管理员", "审计管理员", "所领导-BJ01"} <= names
    doc = yaml.safe_load(access_superset.rls_path(s).read_text(encoding="utf-8"))
    assert [r["name"] for r in doc["filters"]] == [r["name"] for r in access_superset.plan(s)["rls"]]
