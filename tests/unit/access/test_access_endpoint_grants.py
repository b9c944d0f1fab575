"""The SQL endpoint's grants as rendered from the roles file (the endpoint itself: tests/integration/test_access_endpoint.py)."""

from __future__ import annotations

from smartrehab.access import endpoint
from smartrehab.access.roles import load_access
from smartrehab.settings import REPO_ROOT

ACCESS = load_access(REPO_ROOT / "infra" / "access" / "roles.yaml", REPO_ROOT / "catalog")


def test_every_sql_endpoint_entry_of_the_roles_file_is_understood():
    assert endpoint.check_tokens(ACCESS) == []
    broken = load_access(REPO_ROOT / "infra" / "access" / "roles.yaml", REPO_ROOT / "catalog")
    object.__setattr__(broken.roles["analyst"], "sql_endpoint", ("gold", "silver restricted"))
    assert any("silver restricted" in p for p in endpoint.check_tokens(broken))


def test_the_analyst_reads_gold_and_silver_but_never_the_identities():
    read, deny, write = endpoint.grants_of(ACCESS, {"analyst"})
    assert read == ["gold.*", "silver.*"] and not write
    assert "silver.restricted_identity" in deny and "bronze.*" in deny


def test_only_the_pipeline_reads_restricted_tables_and_writes():
    read, deny, write = endpoint.grants_of(ACCESS, {"data_engineer"})
    assert deny == [] and write and "silver.restricted_identity" in read
    for key in set(ACCESS.roles) - {"data_engineer"}:
        _read, deny, write = endpoint.grants_of(ACCESS, {key})
        assert set(endpoint.RESTRICTED) <= set(deny) and not write, key


def test_a_person_in_two_groups_gets_both_grants_and_the_leaders_get_none():
    read, _deny, _ = endpoint.grants_of(ACCESS, {"analyst", "audit_admin"})
    assert {"gold.*", "silver.*", "audit.*"} <= set(read)
    assert endpoint.grants_of(ACCESS, {"centre_leader"})[0] == []
    read, deny, _ = endpoint.grants_of(ACCESS, {"bi_service"})
    assert "quarantine.quarantine_by_rule" in read and "quarantine.*" in deny  # the exact grant wins in the JVM check
