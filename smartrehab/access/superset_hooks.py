"""What Superset's configuration (``infra/superset_config.py``) takes from the platform: LDAP login against the
directory, the roles it maps to, and the audit of logins, dashboard views, chart queries and SQL statements.

Imported inside Superset's own environment (``.venv-superset``), where ``superset`` is importable; it needs from
this repository only the settings, the roles file and ``smartrehab.audit`` (stdlib, PyYAML, deltalake).

* ``AUTH_TYPE = AUTH_LDAP``: a person logs in with the directory's uid and password (direct bind as
  ``uid=<name>,ou=people,<base>``, so service accounts under ``ou=services`` cannot log in to Superset); the
  user's ``memberOf`` groups map to the Superset roles made from ``infra/access/roles.yaml``
  (``AUTH_ROLES_MAPPING``), synchronised at every login; a login with no mapped group gets only Public (no
  permissions).
* The bootstrap ``admin`` (a local account, password in the secrets) is the one break-glass account: it imports the
  dashboards and keeps working when the directory is down; its logins are audited like every other.
* Every login (success and failure, with the client address), dashboard view, chart query and SQL statement is
  appended to ``audit.access_log``. A SQL statement that cannot be audited is not run (QUERY_LOGGER raises).
"""

from __future__ import annotations

import logging
from typing import Any

from smartrehab import audit
from smartrehab.access import directory
from smartrehab.access.roles import load_access
from smartrehab.settings import get_settings

log = logging.getLogger(__name__)
TOOL = "superset"


def _client_addr() -> str:
    try:
        from flask import request

        return request.headers.get("X-Forwarded-For", request.remote_addr or "").split(",")[0].strip()
    except RuntimeError:  # outside a request
        return ""


def _current_username() -> str:
    try:
        from flask import g

        user = getattr(g, "user", None)
        return getattr(user, "username", None) or "anonymous"
    except RuntimeError:
        return "system"


def config_values() -> dict[str, Any]:
    """The configuration keys Superset reads for login, roles and audit."""
    from flask_appbuilder.security.manager import AUTH_LDAP

    s = get_settings()
    access = load_access(s.access_roles_file, s.catalog_dir)
    return {
        "AUTH_TYPE": AUTH_LDAP,
        "AUTH_LDAP_SERVER": s.ldap_uri,
        "AUTH_LDAP_USERNAME_FORMAT": f"uid=%s,{directory.people_dn(s)}",
        "AUTH_LDAP_SEARCH": directory.people_dn(s),
        "AUTH_LDAP_UID_FIELD": "uid",
        "AUTH_LDAP_GROUP_FIELD": "memberOf",
        "AUTH_LDAP_FIRSTNAME_FIELD": "displayName",
        "AUTH_LDAP_LASTNAME_FIELD": "sn",
        "AUTH_LDAP_EMAIL_FIELD": "mail",
        "AUTH_LDAP_USE_TLS": False,  # loopback; a bureau directory is reached through ldaps:// in ldap_url
        "AUTH_USER_REGISTRATION": True,
        "AUTH_USER_REGISTRATION_ROLE": "Public",
        # Registration here is the creation of a directory user's Superset account at first login; Superset's
        # login page still reads the reCAPTCHA key whenever registration is on (no captcha: nobody self-registers).
        "RECAPTCHA_PUBLIC_KEY": "",
        "AUTH_ROLES_SYNC_AT_LOGIN": True,
        "AUTH_ROLES_MAPPING": {directory.group_dn(s, g.cn): [g.superset_name] for g in access.groups()
                               if g.role.in_superset},
        # A session lasts a working shift at most; an expired one must log in again (等保: session timeout).
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "CUSTOM_SECURITY_MANAGER": security_manager_class(),
        "EVENT_LOGGER": event_logger(),
        "QUERY_LOGGER": query_logger,
    }


def security_manager_class():
    from superset.security import SupersetSecurityManager

    class SmartrehabSecurityManager(SupersetSecurityManager):
        """LDAP login (and the break-glass local admin), each attempt audited."""

        def auth_user_ldap(self, username, password):
            s = get_settings()
            if username == s.superset_admin:
                return self.auth_user_db(username, password)
            user = super().auth_user_ldap(username, password)
            _audit_login(username, user, "ldap")
            return user

        def auth_user_db(self, username, password):
            user = super().auth_user_db(username, password)
            _audit_login(username, user, "local")
            return user

        def get_rls_filters(self, table):
            """Fail closed: on a dataset that no rule covers (one made in the UI after the last import), a user
            without a see-all role gets ``1 = 0`` instead of every row."""
            found = super().get_rls_filters(table)
            if found:
                return found
            from flask import g

            user = getattr(g, "user", None)
            if user is None:
                return found
            names = {r.name for r in self.get_user_roles(user)}
            if names & see_all:
                return found
            return [_DENY]

    see_all = _see_all_roles()

    return SmartrehabSecurityManager


class _Rule:
    """A synthetic RLS rule (what Superset's query of its RLS table returns: id, group_key, clause)."""

    def __init__(self, id: int, group_key: str | None, clause: str):
        self.id, self.group_key, self.clause = id, group_key, clause


_DENY = _Rule(-1, None, "1 = 0")


def _see_all_roles() -> set[str]:
    from smartrehab.access.superset import BREAK_GLASS_ROLE

    s = get_settings()
    access = load_access(s.access_roles_file, s.catalog_dir)
    return {g.superset_name for g in access.groups() if g.role.in_superset and g.role.scope == "all"} | {
        BREAK_GLASS_ROLE}


def _audit_login(username: str | None, user, provider: str) -> None:
    ok = user is not None
    audit.record(audit.Event(
        "login", actor=username or "anonymous", tool=TOOL, outcome="success" if ok else "failure",
        client_addr=_client_addr(), action=f"login:{provider}",
        detail={"roles": sorted(r.name for r in user.roles)} if ok else
        {"reason": "invalid credentials, unknown or disabled user"}))


def event_logger():
    from superset.utils.log import DBEventLogger

    class AuditEventLogger(DBEventLogger):
        """Superset's Action Log as before, and dashboard views and chart queries into audit.access_log."""

        def log(self, user_id, action, dashboard_id, duration_ms, slice_id, referrer, *args, **kwargs):
            super().log(user_id, action, dashboard_id, duration_ms, slice_id, referrer, *args, **kwargs)
            kind = _event_kind(action)
            if kind is None:
                return
            records = kwargs.get("records") or [{}]
            dash = dashboard_id or records[0].get("dashboard_id")
            chart = slice_id or records[0].get("slice_id")
            try:
                audit.record(audit.Event(
                    kind, actor=_current_username(), tool=TOOL, action=action, client_addr=_client_addr(),
                    object=f"dashboard:{dash}" if kind == "dashboard_view" else f"chart:{chart}",
                    detail={"dashboard_id": dash, "slice_id": chart, "duration_ms": duration_ms,
                            "referrer": referrer}))
            except Exception:  # the action has happened; a failed record is an alarm, not a crash
                log.exception("audit: could not record %s by %s", action, _current_username())

    return AuditEventLogger()


def _event_kind(action: str | None) -> str | None:
    if not action:
        return None
    if action in ("DashboardRestApi.get", "Superset.dashboard", "DashboardModelView.show") or \
            action.endswith("dashboard") and not action.startswith("log"):
        return "dashboard_view"
    if action in ("ChartDataRestApi.data", "ChartDataRestApi.data_from_cache", "ChartRestApi.data"):
        return "chart_query"
    return None


def query_logger(database, query, schema=None, client=None, security_manager=None, log_params=None):
    """Every statement Superset sends to a database (SQL Lab, charts, dashboards), before it runs."""
    tables: list[str] = []
    try:
        from superset.sql.parse import SQLScript

        for statement in SQLScript(str(query), "hive").statements:
            tables += [".".join(p for p in (t.schema, t.table) if p) for t in statement.tables]
    except Exception:  # unparsable SQL still runs through the database's own parser; record it as it is
        tables = []
    audit.record(audit.Event(
        "sql", actor=_current_username(), tool=TOOL, action=str(client or ""), client_addr=_client_addr(),
        object=str(schema or ""), statement=str(query), tables_read=tables,
        detail={"database": str(database).split("@")[-1], **({"params": str(log_params)} if log_params else {})}))
