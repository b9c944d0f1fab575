"""Test set-up: a var dir, ports and scale of their own, so tests run beside a running demo.

The environment is set here, before anything builds the settings object. Tests marked
``spark`` share one Spark session with Delta and the PostgreSQL metastore; ``services`` tests
also get the SQL endpoint (started once, left running for the rest of the session). When the session
ends, every service it started is stopped (``pytest_sessionfinish``).
"""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_ENV = {
    "SMARTREHAB_VAR_DIR": str(REPO / "var" / "test"),
    "SMARTREHAB_PG_PORT": "5434",
    "SMARTREHAB_THRIFT_PORT": "10001",
    "SMARTREHAB_SUPERSET_PORT": "8089",
    "SMARTREHAB_AIRFLOW_PORT": "8081",
    "SMARTREHAB_MLFLOW_PORT": "5001",
    "SMARTREHAB_LDAP_PORT": "3891",
    "SMARTREHAB_SCALE_FACTOR": "0.01",
    "SMARTREHAB_SPARK_DRIVER_MEMORY": "3g",
    # The full extract (about 4 MiB) keeps generated code, the incremental day (under 0.1 MiB) is
    # loaded with interpreted projections: every run of the tests loads through both.
    "SMARTREHAB_LEGACY_INTERPRETED_MAX_MIB": "1",
    # A slice of the catalog that covers every file format, encoding and reference shape.
    "SMARTREHAB_LEGACY_TABLES": "ZJ_RYJBXX,ZJ_RSDJ,ZJ_FQFQ,SH_XFJL,XL_SCL90,ZD_PGJL,ZD_SLTD,YL_CRBS,"
    # ... plus what the gold indicators read (five centres, assessment areas, safety, follow-up).
    "JY_XSHZ,JY_KSCJ,XL_WJGY,YD_TZCS,YD_XLJL,YL_WZJY,ZD_SXKF,ZD_XWBX,ZD_SHHJ,AQ_SJDJ,SY_HFJL,"
    # ... plus what the relapse-risk features read (drug history, scales, behaviour, family contact).
    "ZJ_XDS,XL_16PF,XL_FXPG,ZJ_XWKH,ZJ_YDKH,ZJ_TSDJ,ZJ_QQDH,ZJ_JTCY",
}
for k, v in TEST_ENV.items():
    os.environ.setdefault(k, v)

AS_OF = date(2026, 11, 20)


def pytest_sessionfinish(session, exitstatus):
    """Stop the services of the tests' var dir (PostgreSQL, the SQL endpoint, Superset, Airflow, MLflow)
    once the session's fixtures are torn down: a server left holding its port would make the next test
    run from another checkout on this machine (CI's clean clone) fail to start its own.
    ``SMARTREHAB_TEST_KEEP_SERVICES=1`` leaves them up, for quicker re-runs while developing."""
    if os.environ.get("SMARTREHAB_TEST_KEEP_SERVICES") == "1":
        return
    from smartrehab import services
    from smartrehab.settings import get_settings

    services.stop_all(get_settings(), log=lambda _message: None)


@pytest.fixture(scope="session")
def settings():
    from smartrehab.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def metastore(settings):
    from smartrehab import jars, services

    jars.fetch_jars(settings)  # verified against infra/jars.lock; downloads only what is missing
    services.start_postgres(settings)
    services.ensure_metastore(settings)
    return settings


@pytest.fixture(scope="session")
def spark(metastore):
    from smartrehab.spark import get_spark

    session = get_spark("tests", metastore)
    yield session
    session.stop()  # before pytest_sessionfinish stops the metastore's PostgreSQL under it
    # py4j logs every connection it closes at INFO, also when the garbage collector closes them at
    # interpreter exit, by then through a handler (Airflow's) whose stream pytest has closed.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def sql_endpoint(metastore):
    from smartrehab import services

    services.start_thrift(metastore)
    return metastore


@pytest.fixture(scope="session")
def directory(settings):
    """The embedded OpenLDAP of the tests' var dir, seeded from infra/access/roles.yaml (about a second)."""
    from smartrehab.access import directory as ldap_directory

    ldap_directory.start(settings, log=lambda _message: None)
    return settings


@pytest.fixture(scope="session")
def airflow_env(metastore):
    """Airflow's own settings (home, DAG folder, DB) in this process, DB migrated once."""
    from smartrehab import services

    os.environ.update(services.airflow_env(metastore))
    services.init_airflow(metastore)
    return metastore


@pytest.fixture(scope="session")
def legacy_loaded(spark, settings):
    """The generated deliveries (full extract + one incremental day) loaded once for the session."""
    import shutil

    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import generate
    from spark_jobs.legacy import ingest

    for db in ("bronze", "silver", "quarantine", "audit", "gold", "gold_staging"):
        for t in spark.catalog.listTables(db) if spark.catalog.databaseExists(db) else []:
            spark.sql(f"drop table if exists {db}.{t.name}")
    shutil.rmtree(settings.landing_dir, ignore_errors=True)
    deliveries = generate(load_catalog(settings.catalog_dir), settings.landing_dir, settings.scale_factor,
                          settings.seed, AS_OF, days=1, tables=settings.legacy_table_list)
    report = ingest.run(spark, settings)
    return deliveries, report


@pytest.fixture(scope="session")
def reset_feeds(spark, settings):
    """A function that empties the live-feed landing zone, the stream checkpoints and every feed table, for
    a test module that simulates feeds of its own."""
    import shutil

    from spark_jobs.feeds import hourly, quality, silver, stream

    def reset() -> None:
        shutil.rmtree(settings.landing_dir / "feeds", ignore_errors=True)
        shutil.rmtree(settings.var_dir / "checkpoints", ignore_errors=True)
        for t in (stream.BRONZE, stream.QUARANTINE, silver.SILVER, silver.DIM_LOCATION, silver.DEVICES,
                  silver.PATROL_PLAN, hourly.HOURLY, quality.ALERTS):
            spark.sql(f"drop table if exists {t}")

    return reset


@pytest.fixture(scope="session")
def as_of_day() -> date:
    return AS_OF
