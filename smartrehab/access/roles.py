"""The roles file (``infra/access/roles.yaml``), read and checked once for every tool.

A role is centre-scoped (``scope: centre``) or not; a centre-scoped role becomes one directory group and one
Superset role per centre of the centre code table (``catalog/code_tables/centre.csv``), named
``<name_zh>-<centre code>``. Everything else derives its names from here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

SCOPES = ("all", "centre", "none")
SUPERSET_LIKE = ("Gamma", "Alpha", "none")
SUPERSET_EXTRA = ("all_datasource_access", "sql_lab", "security", "action_log")


class RolesError(ValueError):
    pass


@dataclass(frozen=True)
class Role:
    key: str
    name_zh: str
    description: str
    person: bool
    scope: str
    superset_like: str
    superset_extra: tuple[str, ...]
    sql_endpoint: tuple[str, ...]

    @property
    def in_superset(self) -> bool:
        """A person's role with some Superset permission gets a Superset role (service accounts never do)."""
        return self.person and (self.superset_like != "none" or bool(self.superset_extra))


@dataclass(frozen=True)
class Group:
    """One directory group and one Superset role: a role, or a centre-scoped role for one centre."""

    cn: str  # directory group name (ASCII): bureau_leader, centre_leader-BJ01
    role: Role
    centre: str | None
    superset_name: str  # 局领导, 所领导-BJ01


@dataclass(frozen=True)
class DemoUser:
    uid: str
    cn: str
    role: str
    centre: str | None

    @property
    def group_cn(self) -> str:
        return f"{self.role}-{self.centre}" if self.centre else self.role


@dataclass(frozen=True)
class Access:
    roles: dict[str, Role]
    centres: tuple[str, ...]
    row_filter_column: str
    demo_users: tuple[DemoUser, ...]

    def groups(self) -> list[Group]:
        out = []
        for role in self.roles.values():
            if role.scope == "centre":
                out += [Group(f"{role.key}-{c}", role, c, f"{role.name_zh}-{c}") for c in self.centres]
            else:
                out.append(Group(role.key, role, None, role.name_zh))
        return out

    def group(self, cn: str) -> Group:
        for g in self.groups():
            if g.cn == cn:
                return g
        raise KeyError(cn)


def load_centres(catalog_dir: Path) -> tuple[str, ...]:
    with (catalog_dir / "code_tables" / "centre.csv").open(encoding="utf-8") as fh:
        return tuple(row["code"] for row in csv.DictReader(fh))


def load_access(path: Path, catalog_dir: Path) -> Access:
    """Read and check the roles file; errors name the file, the entry and what to change."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    centres = load_centres(catalog_dir)
    roles: dict[str, Role] = {}
    for key, r in (doc.get("roles") or {}).items():
        where = f"{path}: role '{key}'"
        if not key.isascii() or not key.replace("_", "").isalnum():
            raise RolesError(f"{where}: the key must be ASCII letters, digits and '_' (it names a directory group)")
        scope = r.get("scope")
        if scope not in SCOPES:
            raise RolesError(f"{where}: scope '{scope}' is not one of {SCOPES}")
        ss = r.get("superset") or {}
        like = ss.get("like", "none")
        if like not in SUPERSET_LIKE:
            raise RolesError(f"{where}: superset.like '{like}' is not one of {SUPERSET_LIKE}")
        extra = tuple(ss.get("extra") or ())
        bad = [e for e in extra if e not in SUPERSET_EXTRA]
        if bad:
            raise RolesError(f"{where}: superset.extra {bad} unknown; known: {SUPERSET_EXTRA}")
        if not r.get("name_zh"):
            raise RolesError(f"{where}: name_zh is missing")
        roles[key] = Role(key, r["name_zh"], r.get("description", ""), bool(r.get("person", True)), scope, like,
                          extra, tuple(r.get("sql_endpoint") or ()))
    names = [r.name_zh for r in roles.values()]
    if len(set(names)) != len(names):
        raise RolesError(f"{path}: two roles share a name_zh: {sorted(names)}")
    users = []
    seen: set[str] = set()
    for i, u in enumerate(doc.get("demo_users") or []):
        where = f"{path}: demo_users[{i}] ({u.get('uid')})"
        if u.get("role") not in roles:
            raise RolesError(f"{where}: role '{u.get('role')}' is not defined under roles:")
        role = roles[u["role"]]
        centre = u.get("centre")
        if role.scope == "centre" and centre not in centres:
            raise RolesError(f"{where}: a {role.name_zh} needs a centre of catalog/code_tables/centre.csv, "
                             f"got {centre!r}")
        if role.scope != "centre" and centre:
            raise RolesError(f"{where}: role {role.name_zh} is not centre-scoped; remove centre")
        if u["uid"] in seen:
            raise RolesError(f"{where}: uid used twice (no shared accounts)")
        seen.add(u["uid"])
        users.append(DemoUser(u["uid"], u.get("cn", u["uid"]), u["role"], centre))
    column = ((doc.get("row_filters") or {}).get("centre") or {}).get("column")
    if not column:
        raise RolesError(f"{path}: row_filters.centre.column is missing (the column that names a row's centre)")
    return Access(roles, centres, column, tuple(users))
