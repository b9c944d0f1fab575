"""Superset dashboards as code: build the bundle, import it, read it back through the REST API.

The dashboards, charts, datasets and the database connection are YAML files under
``superset_assets/`` (Superset's export layout, fixed UUIDs). ``build_bundle`` zips them,
``import_bundle`` imports the zip with ``superset import-dashboards`` (no server needed, and
importing again updates the dashboard instead of duplicating it), and ``SupersetClient`` talks to
the running server (login, CSRF token, chart data, dashboard list, REST imports).
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import requests
import yaml

from smartrehab import services
from smartrehab.settings import Settings

# Superset strips the first folder of every path in the zip: the bundle must have one.
BUNDLE_ROOT = "smartrehab_superset_assets"
BUNDLE_NAME = "superset_assets.zip"
# The address written in databases/*.yaml; build_bundle puts the settings' SQL endpoint there.
DEFAULT_SQL_ENDPOINT = "127.0.0.1:10000"
SERVICE_ACCOUNT = "svc.superset"

LEADERSHIP_DASHBOARD_UUID = "c7ead49a-ef3f-4d76-833d-a35078d242a6"
CHART_UUIDS = {
    "population_trend_by_zone": "7071b00f-ffd9-4302-8154-8f29e045e51d",
    "current_population": "e7fc7a2f-97db-46df-8b30-4da56dc776c5",
    "population_by_centre": "c1019327-c7cb-4145-9a4e-b2bd0502cbcd",
    "centre_zone_table": "39dc48d4-578e-493f-958f-deac38d58297",
}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KINDS = ("databases", "datasets", "charts", "dashboards")


class SupersetError(RuntimeError):
    pass


# ---- bundle ---------------------------------------------------------------------------------
def check_assets(assets_dir: Path) -> list[str]:
    """Problems of the asset files that Superset would report late or not at all."""
    problems: list[str] = []
    if not (assets_dir / "metadata.yaml").is_file():
        return [f"{assets_dir}/metadata.yaml is missing"]
    docs: dict[str, dict[Path, dict]] = {k: {} for k in _KINDS}
    seen: dict[str, Path] = {}
    for kind in _KINDS:
        for path in sorted((assets_dir / kind).rglob("*.yaml")):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                problems.append(f"{path}: not valid YAML ({exc})")
                continue
            uid = str((doc or {}).get("uuid", ""))
            if not _UUID.match(uid):
                problems.append(f"{path}: missing or malformed uuid")
            elif uid in seen:
                problems.append(f"{path}: uuid {uid} also used by {seen[uid]}")
            seen[uid] = path
            docs[kind][path] = doc or {}
    uuids = {k: {str(d.get("uuid")) for d in docs[k].values()} for k in _KINDS}
    for path, doc in docs["datasets"].items():
        if str(doc.get("database_uuid")) not in uuids["databases"]:
            problems.append(f"{path}: database_uuid {doc.get('database_uuid')} has no file in databases/")
    for path, doc in docs["charts"].items():
        if str(doc.get("dataset_uuid")) not in uuids["datasets"]:
            problems.append(f"{path}: dataset_uuid {doc.get('dataset_uuid')} has no file in datasets/")
    for path, doc in docs["dashboards"].items():
        for node_id, node in (doc.get("position") or {}).items():
            if not isinstance(node, dict) or node.get("type") != "CHART":
                continue
            meta = node.get("meta") or {}
            if "uuid" not in meta or "chartId" not in meta:
                problems.append(f"{path}: CHART node {node_id} needs meta.uuid and meta.chartId")
            elif str(meta["uuid"]) not in uuids["charts"]:
                problems.append(f"{path}: CHART node {node_id} points at chart {meta['uuid']} with no file")
    return problems


def build_bundle(s: Settings) -> Path:
    """Zip ``superset_assets/`` into ``var/superset_assets.zip`` (one top folder inside)."""
    src = s.superset_assets_dir
    problems = check_assets(src)
    if problems:
        raise SupersetError("superset_assets/ is not importable:\n  " + "\n  ".join(problems))
    out = s.var_dir / BUNDLE_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")):
            rel = path.relative_to(src).as_posix()
            if rel.startswith("access/"):  # roles and RLS: not part of Superset's bundles (smartrehab.access)
                continue
            text = path.read_text(encoding="utf-8")
            if rel.startswith("databases/"):
                text = text.replace(f"hive://{DEFAULT_SQL_ENDPOINT}/gold", endpoint_uri(s))
            info = zipfile.ZipInfo(f"{BUNDLE_ROOT}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    os.chmod(tmp, 0o600)  # it holds the service account's password
    tmp.replace(out)
    return out


def endpoint_uri(s: Settings, with_password: bool = True) -> str:
    """Superset's connection to the SQL endpoint: the dashboards' service account (role bi_service of
    infra/access/roles.yaml), LDAP login. Superset keeps the password encrypted in its metadata database and
    applies each viewer's row-level security itself."""
    from urllib.parse import quote

    from smartrehab.access import directory

    secret = f":{quote(directory.user_password(s, SERVICE_ACCOUNT), safe='')}" if with_password else ""
    return f"hive://{SERVICE_ACCOUNT}{secret}@{s.thrift_host}:{s.thrift_port}/gold?auth=LDAP"


def import_bundle(s: Settings, *, update_existing: bool = False, log=print) -> Path:
    """Import the bundle; running it again changes nothing but the dashboard itself.

    ``superset import-datasources`` imports every dataset (also those no chart uses yet) and
    overwrites existing ones, so the metrics generated from the indicator registry are always
    current; ``superset import-dashboards`` then creates the charts that do not exist yet and
    replaces the dashboard, but leaves existing charts and the database as they are.
    ``update_existing=True`` then pushes the files over those too through the REST assets import
    (needs the running server).
    """
    bundle = build_bundle(s)
    services.init_superset(s, log)  # a no-op once Superset's metadata database exists
    services.superset_cli(s, "import-datasources", "-p", str(bundle), "-u", s.superset_admin)
    services.superset_cli(s, "import-dashboards", "-p", str(bundle), "-u", s.superset_admin)
    log(f"superset: imported {bundle.name}")
    from smartrehab.access import superset as access

    access.apply(s, log)  # roles and row-level security from infra/access/roles.yaml
    if update_existing:
        SupersetClient.from_settings(s).import_assets(bundle)
        log("superset: existing charts, datasets and database overwritten from the files")
    return bundle


# ---- REST client ----------------------------------------------------------------------------
class SupersetClient:
    """A logged-in session on Superset's REST API (bearer token, session cookie, CSRF token)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 120, provider: str = "ldap"):
        """``provider``: Superset takes only its configured one, "ldap" (AUTH_LDAP); the local break-glass admin
        logs in through it too (``superset_hooks`` checks that one account against the local password)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._username, self._password, self._provider = username, password, provider
        self.session = requests.Session()
        self.session.headers["Referer"] = self.base_url + "/"
        self._csrf: str | None = None
        self.login()

    @classmethod
    def from_settings(cls, s: Settings) -> SupersetClient:
        return cls(f"http://127.0.0.1:{s.superset_port}", s.superset_admin, s.secret("superset_admin_password"))

    def login(self, wait: float = 60) -> None:
        deadline = time.time() + wait
        while True:
            try:
                res = self.session.post(
                    f"{self.base_url}/api/v1/security/login", timeout=self.timeout,
                    json={"username": self._username, "password": self._password, "provider": self._provider,
                          "refresh": True})
                break
            except requests.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        if res.status_code != 200:
            raise SupersetError(f"login as {self._username} failed: {res.status_code} {res.text[:300]}")
        self.session.headers["Authorization"] = f"Bearer {res.json()['access_token']}"
        self._csrf = None

    def csrf_token(self) -> str:
        """Writes need it even with a bearer token; it is bound to the session cookie."""
        if self._csrf is None:
            self._csrf = self.get("/api/v1/security/csrf_token/")["result"]
            self.session.headers["X-CSRFToken"] = self._csrf
        return self._csrf

    def _check(self, res: requests.Response) -> Any:
        if res.status_code >= 400:
            raise SupersetError(f"{res.request.method} {res.url}: {res.status_code} {res.text[:1000]}")
        return res.json()

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.session.get(self.base_url + path, params=params or None, timeout=self.timeout))

    def post(self, path: str, **kwargs: Any) -> Any:
        self.csrf_token()
        return self._check(self.session.post(self.base_url + path, timeout=self.timeout, **kwargs))

    def _list(self, resource: str, filters: str = "") -> list[dict]:
        rows: list[dict] = []
        page = 0
        while True:
            q = f"(page:{page},page_size:100{',filters:!(' + filters + ')' if filters else ''})"
            body = self.get(f"/api/v1/{resource}/", q=q)
            rows.extend(body["result"])
            if not body["result"] or len(rows) >= body["count"]:
                return rows
            page += 1

    def dashboards(self) -> list[dict]:
        return self._list("dashboard")

    def charts(self) -> list[dict]:
        return self._list("chart")

    def datasets(self) -> list[dict]:
        return self._list("dataset")

    def databases(self) -> list[dict]:
        return self._list("database")

    def chart_id(self, chart: int | str) -> int:
        """The numeric id of a chart given by id or by the uuid of its file."""
        if isinstance(chart, int) or str(chart).isdigit():
            return int(chart)
        if not _UUID.match(str(chart)):
            raise ValueError(f"not a chart id or uuid: {chart!r}")
        found = self._list("chart", f"(col:uuid,opr:eq,value:'{chart}')")
        if len(found) != 1:
            raise SupersetError(f"chart {chart}: {len(found)} charts have this uuid (imported?)")
        return int(found[0]["id"])

    def chart_data(self, chart: int | str, *, force: bool = False) -> dict:
        """Run the chart's saved query (its query_context) and return Superset's response.

        ``result[0]["data"]`` holds the rows, ``result[0]["query"]`` the SQL that was run.
        """
        pk = self.chart_id(chart)
        params = {"format": "json", "type": "full"}
        if force:
            params["force"] = "true"
        return self.get(f"/api/v1/chart/{pk}/data/", **params)

    def import_assets(self, bundle: Path, passwords: dict[str, str] | None = None) -> dict:
        """POST the bundle to /api/v1/assets/import/: creates or overwrites every object in it."""
        data = {"passwords": json.dumps(passwords)} if passwords else {}
        with open(bundle, "rb") as fh:
            return self.post("/api/v1/assets/import/", data=data,
                             files={"bundle": (bundle.name, fh, "application/zip")})
