"""Superset configuration of the platform, read through SUPERSET_CONFIG_PATH.

``smartrehab.services.superset_env`` sets SUPERSET_CONFIG_PATH, SUPERSET_HOME and
SUPERSET_SECRET_KEY (from the platform's secret source). Dashboards are files under
``superset_assets/`` imported with ``smartrehab.superset.import_bundle``; no example data.
"""

import os
import sys
from pathlib import Path

from pyhive import sqlalchemy_hive
from sqlalchemy import text

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY", "")
if not SECRET_KEY:
    raise RuntimeError(
        "SUPERSET_SECRET_KEY is not set: start Superset through smartrehab.services "
        "(superset_env), which reads it from the platform's secret source"
    )

_HOME = os.environ.get("SUPERSET_HOME") or os.path.expanduser("~/.superset")
DATA_DIR = _HOME
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.path.join(_HOME, 'superset.db')}?check_same_thread=false"

WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = 60 * 60 * 24

# One gunicorn worker: an in-process cache is enough and needs no Redis.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300, "CACHE_KEY_PREFIX": "sr_meta_"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 600, "CACHE_KEY_PREFIX": "sr_data_"}

# Dashboards as code need no flag in 6.x: versioned YAML import/export (the old VERSIONED_EXPORT)
# and native filters are always on. Jinja templating lets a dataset file carry parameterised SQL.
# RLS_IN_SQLLAB: the row-level security of a dataset also applies to SQL Lab queries on its table.
FEATURE_FLAGS = {"ENABLE_TEMPLATE_PROCESSING": True, "RLS_IN_SQLLAB": True}

BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {"zh": {"flag": "cn", "name": "Chinese"}, "en": {"flag": "us", "name": "English"}}
ROW_LIMIT = 50000

# Same-origin only: the default policy also lets browsers load a telemetry pixel (scarf.sh),
# map tiles and web fonts from outside, which a closed justice network neither has nor wants.
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"], "default-src": ["'self'"], "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"], "connect-src": ["'self'"], "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"], "font-src": ["'self'"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}


# PyHive 0.7 reads the first column of SHOW TABLES / SHOW VIEWS. Hive returns (tab_name), the
# Spark Thrift Server (namespace, tableName, isTemporary): without this Superset lists the
# schema name instead of the tables.
def _names(rows):
    return [r[1] if len(r) > 1 else r[0] for r in rows if len(r) < 3 or not r[2]]


def _get_table_names(self, connection, schema=None, **kw):
    query = "SHOW TABLES" + (f" IN {self.identifier_preparer.quote_identifier(schema)}" if schema else "")
    return _names(connection.execute(text(query)).fetchall())


sqlalchemy_hive.HiveDialect.get_table_names = _get_table_names


def FLASK_APP_MUTATOR(app):  # noqa: N802 - Superset's name
    """Same fix for the views list, which Superset's Hive spec reads with a raw cursor."""
    from superset.db_engine_specs.hive import HiveEngineSpec

    def get_view_names(cls, database, inspector, schema):
        with database.get_raw_connection(schema=schema) as conn:
            cursor = conn.cursor()
            cursor.execute("SHOW VIEWS" + (f" IN `{schema}`" if schema else ""))
            return set(_names(cursor.fetchall()))

    HiveEngineSpec.get_view_names = classmethod(get_view_names)


# ---- identity, roles and audit (smartrehab/access/superset_hooks.py, docs/security.md) ----------------------
# LDAP login against the directory, Superset roles mapped from its groups (made from infra/access/roles.yaml),
# logins, dashboard views, chart queries and SQL statements into audit.access_log. Sets AUTH_TYPE, AUTH_LDAP_*,
# AUTH_ROLES_MAPPING, AUTH_USER_REGISTRATION*, PERMANENT_SESSION_LIFETIME, CUSTOM_SECURITY_MANAGER,
# EVENT_LOGGER and QUERY_LOGGER.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from smartrehab.access.superset_hooks import config_values  # noqa: E402

globals().update(config_values())

