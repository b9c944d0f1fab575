"""Every dashboard of superset_assets/ in a real browser, on the data of the pipeline.

Playwright for Python drives Debian's ``chromium`` (``executable_path``: nothing is downloaded). The
test logs in as the admin, opens each dashboard and waits until every chart of its layout is on the
page, no loading indicator is left, no chart shows an error, and every chart-data request was answered
200 with rows for every chart; then it saves a screenshot per dashboard under
``<var dir>/screenshots/`` (not committed). It runs after tests/integration/test_pipeline.py (files
are collected alphabetically), which builds the lake these dashboards read.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from smartrehab import services
from smartrehab.superset import SupersetClient, import_bundle

pytestmark = [pytest.mark.services]

ASSETS = Path(__file__).resolve().parents[2] / "superset_assets"
TIMEOUT_S = 120


def _dashboards() -> list[dict]:
    out = []
    for path in sorted((ASSETS / "dashboards").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        charts = {n["meta"]["uuid"]: n["meta"]["sliceName"] for n in doc["position"].values()
                  if isinstance(n, dict) and n.get("type") == "CHART"}
        # Superset wraps a markdown block (the dashboard's notes) in the same holder as a chart.
        markdowns = sum(1 for n in doc["position"].values() if isinstance(n, dict) and n.get("type") == "MARKDOWN")
        out.append({"slug": doc["slug"], "title": doc["dashboard_title"], "uuid": doc["uuid"], "charts": charts,
                    "holders": len(charts) + markdowns})
    return out


DASHBOARDS = _dashboards()


@pytest.fixture(scope="module")
def superset(settings):
    """The SQL endpoint and Superset over the test lake, with the bundle imported (files as they are now)."""
    services.start_postgres(settings)
    services.ensure_metastore(settings)
    services.start_thrift(settings)
    services.start_superset(settings)
    bundle = import_bundle(settings, log=lambda _msg: None)
    client = _admin_client(settings)
    client.import_assets(bundle)  # the files as they are now, also over charts imported before
    missing = [t for t in ("gold.relapse_risk_score", "gold.security_situation_score", "audit.load_reconciliation")
               if not _table_exists(settings, t)]
    assert not missing, f"{missing} missing in the test lake: run tests/integration/test_pipeline.py first"
    return client


def _admin_client(s) -> SupersetClient:
    """The break-glass admin (a local account, through the ldap provider like everyone)."""
    return SupersetClient.from_settings(s)


def _table_exists(s, table: str) -> bool:
    from smartrehab.access import endpoint

    schema, name = table.split(".")
    return bool(endpoint.rows(s, f"show tables in {schema} like '{name}'"))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is not installed: run infra/setup.sh (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, superset, settings):
    """A logged-in page (the login form is rendered by JavaScript: wait for #username)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    base = f"http://127.0.0.1:{settings.superset_port}"
    page.goto(f"{base}/login/")
    page.wait_for_selector("#username")
    page.fill("#username", settings.superset_admin)
    page.fill("#password", settings.secret("superset_admin_password"))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    yield page
    context.close()


def _open(page, base: str, dashboard: dict, chart_ids: dict[int, str]) -> tuple[dict, list]:
    """Open the dashboard; return {chart id: (status, rows)} of its chart-data answers and any failed request."""
    answers: dict[int, tuple[int, int]] = {}
    failed: list = []

    def on_response(res):
        if "/api/v1/chart/data" not in res.url or res.request.method != "POST":
            return
        try:
            body = json.loads(res.request.post_data or "{}")
        except ValueError:
            body = {}
        slice_id = (body.get("form_data") or {}).get("slice_id")
        rows = 0
        if res.status == 200:
            rows = sum(r.get("rowcount") or len(r.get("data") or []) for r in res.json().get("result", []))
        else:
            failed.append((slice_id, res.status, res.text()[:500]))
        if slice_id in chart_ids:
            answers[slice_id] = (res.status, rows)

    page.on("response", on_response)
    try:
        page.goto(f"{base}/superset/dashboard/{dashboard['slug']}/")
        page.wait_for_selector('[data-test="dashboard-header-container"], [data-test="dashboard-header"]')
        holders = page.locator('[data-test="dashboard-component-chart-holder"]')
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            # Charts below the fold render when scrolled to (dashboard virtualisation).
            for i in range(holders.count()):
                holders.nth(i).scroll_into_view_if_needed()
            loading = page.locator('[aria-label="Loading"]:visible, [data-test="loading-indicator"]:visible').count()
            if holders.count() == dashboard["holders"] and not loading and set(answers) >= set(chart_ids):
                break
            page.wait_for_timeout(500)
        page.wait_for_timeout(1000)  # the last answers' charts paint
    finally:
        page.remove_listener("response", on_response)
    return answers, failed


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["slug"] for d in DASHBOARDS])
def test_dashboard_renders_every_chart_with_data(page, superset, settings, dashboard):
    ours = [d for d in superset.dashboards() if d.get("uuid") == dashboard["uuid"]]
    assert len(ours) == 1, f"dashboard {dashboard['slug']} was not imported once: {ours}"
    charts = superset.get(f"/api/v1/dashboard/{ours[0]['id']}/charts")["result"]
    chart_ids = {c["id"]: c["slice_name"] for c in charts}
    assert sorted(chart_ids.values()) == sorted(dashboard["charts"].values())

    base = f"http://127.0.0.1:{settings.superset_port}"
    started = time.monotonic()
    answers, failed = _open(page, base, dashboard, chart_ids)
    shots = settings.var_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{dashboard['slug']}.png"), full_page=True)
    print(f"{dashboard['slug']}: {len(chart_ids)} charts in {time.monotonic() - started:.1f}s")

    assert not failed, f"{dashboard['title']}: chart-data requests failed: {failed}"
    unanswered = [chart_ids[c] for c in chart_ids if c not in answers]
    assert not unanswered, f"{dashboard['title']}: no chart-data answer for {unanswered}"
    empty = [chart_ids[c] for c, (_status, rows) in answers.items() if rows == 0]
    assert not empty, f"{dashboard['title']}: charts without data (the pipeline's tables are empty?): {empty}"
    holders = page.locator('[data-test="dashboard-component-chart-holder"]')
    assert holders.count() == dashboard["holders"]
    assert page.locator('[aria-label="Loading"]:visible, [data-test="loading-indicator"]:visible').count() == 0
    errors = holders.locator('[role="alert"], [data-test="error-tooltip"]')
    assert errors.count() == 0, f"{dashboard['title']}: charts in error: {errors.all_inner_texts()}"
    # Codes never stand for names: no chart shows a centre code where its name belongs.
    codes = re.findall(r"(?<![A-Z0-9])BJ0\d(?!\d)", " ".join(holders.all_inner_texts()))
    assert not codes, f"{dashboard['title']} shows centre codes {sorted(set(codes))} where names belong"
