"""Apply a roles-and-RLS plan (``smartrehab.access.superset.plan``) to Superset's metadata database.

Runs in Superset's environment: ``.venv-superset/bin/python -m smartrehab.access.superset_apply plan.json``
(``smartrehab.access.superset.apply`` does). Touches only the roles named in the plan and the RLS rules whose
name starts with the plan's prefix (a rule of that prefix no longer in the plan is deleted). Prints one JSON
line: how many roles and rules it set.
"""

from __future__ import annotations

import json
import sys

# Permissions that the roles file's `extra` names stand for. The view-menu names are Superset 6.1's.
SECURITY_VIEWS = {"User", "Role", "Row Level Security", "Security", "List Users", "List Roles", "Group",
                  "List Groups", "UserInfoEditView", "Permission", "PermissionViewMenu", "ViewMenu"}
ACTION_LOG_VIEWS = {"Log", "Action Log", "Security"}


def _perms(sm, like: str, extra: list[str]) -> list:
    def of(role_name):
        role = sm.find_role(role_name)
        return list(role.permissions) if role else []

    def pv(perm, view):
        found = sm.find_permission_view_menu(perm, view)
        return [found] if found else [sm.add_permission_view_menu(perm, view)]

    perms = of(like) if like != "none" else []
    admin = of("Admin")
    for name in extra:
        if name == "all_datasource_access":
            perms += pv("all_datasource_access", "all_datasource_access")
        elif name == "sql_lab":
            perms += of("sql_lab") + pv("all_database_access", "all_database_access")
        elif name == "security":
            perms += [p for p in admin if p.view_menu.name in SECURITY_VIEWS]
        elif name == "action_log":
            perms += [p for p in admin if p.view_menu.name in ACTION_LOG_VIEWS
                      and (p.view_menu.name != "Security" or p.permission.name == "menu_access")]
        else:
            raise SystemExit(f"unknown extra permission {name!r} (see smartrehab/access/roles.py)")
    if like == "none" and extra:
        # Whoever may log in may see their own profile and the welcome page.
        perms += [p for p in of("Gamma") if p.view_menu.name in ("UserInfoEditView", "Superset", "Profile", "Me",
                                                                  "CurrentUserRestApi")
                  and p.permission.name in ("can_this_form_get", "can_welcome", "can_profile", "can_read")]
    seen, out = set(), []
    for p in perms:
        if p.id not in seen:
            seen.add(p.id)
            out.append(p)
    return out


def main(path: str) -> None:
    from superset.app import create_app

    plan = json.loads(open(path, encoding="utf-8").read())
    app = create_app()
    with app.app_context():
        from superset import db
        from superset import security_manager as sm
        from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
        from superset.utils.core import RowLevelSecurityFilterType

        for r in plan["roles"]:
            role = sm.find_role(r["name"]) or sm.add_role(r["name"])
            role.permissions = _perms(sm, r["like"], r["extra"])
        db.session.commit()

        tables = {f"{t.schema}.{t.table_name}": t for t in db.session.query(SqlaTable).all()}
        wanted = {rule["name"] for rule in plan["rls"]}
        for old in db.session.query(RowLevelSecurityFilter).all():
            if old.name.startswith(plan["prefix"]) and old.name not in wanted:
                db.session.delete(old)
        missing = []
        for rule in plan["rls"]:
            f = db.session.query(RowLevelSecurityFilter).filter_by(name=rule["name"]).one_or_none()
            f = f or RowLevelSecurityFilter(name=rule["name"])
            f.filter_type = RowLevelSecurityFilterType(rule["filter_type"])
            f.clause = rule["clause"]
            f.group_key = rule.get("group_key")
            f.description = rule.get("description")
            f.tables = [tables[t] for t in rule["tables"] if t in tables]
            missing += [t for t in rule["tables"] if t not in tables]
            roles = [sm.find_role(n) for n in rule["roles"]]
            if None in roles:
                raise SystemExit(f"RLS rule {rule['name']!r} names a role Superset does not have: {rule['roles']}")
            f.roles = roles
            db.session.add(f)
        db.session.commit()
        target = plan.get("database")
        if target:
            import uuid

            from superset.models.core import Database

            found = db.session.query(Database).filter_by(uuid=uuid.UUID(target["uuid"])).one_or_none()
            if found is not None:
                found.set_sqlalchemy_uri(target["uri"])  # Superset keeps the password encrypted, the URI masked
                db.session.commit()
    print(json.dumps({"roles": len(plan["roles"]), "rls": len(plan["rls"]), "tables_not_imported": sorted(set(missing))}))


if __name__ == "__main__":
    main(sys.argv[1])
