"""``smartrehab``: the platform's user-facing jobs.

    smartrehab setup      jar cache, metastore, Airflow DB, dbt manifest (idempotent)
    smartrehab generate   synthetic legacy deliveries and the live feeds of their last six weeks into the landing zone
    smartrehab run        the pipeline end to end: legacy_ingest -> gold_build -> feeds_ingest -> relapse_train ->
                          relapse_score -> security_train -> security_score
    smartrehab serve      SQL endpoint, MLflow, Airflow, Superset (dashboards imported); --live: the feed
                          simulator too, with feeds_ingest every 15 minutes and security_score after it
    smartrehab status     what runs where
    smartrehab stop       stop everything `serve` and `run` started
    smartrehab coverage   where every legacy item goes (bronze, silver, dbt models)
    smartrehab demo       setup + generate + run + serve --live, then print where to look
    smartrehab export verify <package> --public-key <pem>   the receiver's check of an exchange package
    smartrehab audit verify   chain the SQL endpoint's spooled statements, recompute the hash chain of audit.access_log;
                              exit 1 naming the first broken record
    smartrehab audit ingest   only chain the spooled statements
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from smartrehab.settings import Settings, get_settings

T0 = time.time()
PIPELINE = ["legacy_ingest", "gold_build", "feeds_ingest", "relapse_train", "relapse_score", "security_train",
            "security_score"]
# Days of live feeds `generate` simulates: six weeks. The incident register is known through the day before
# the last delivery and a label needs its 7-day horizon, the first week only fills the 30-day norm
# (MIN_NORM_DAYS), and the time split purges a horizon between training and backtest days.
FEED_DAYS = 42


def progress(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def cmd_setup(s: Settings) -> None:
    from smartrehab import jars, services
    from smartrehab.spark import write_spark_defaults

    progress(f"java: {services.check_java()}")
    jars.fetch_jars(s, log=progress)
    progress(f"jar cache: {len(jars.locked_jars(s))} jars verified in {s.jars_dir}")
    write_spark_defaults(s)
    services.start_postgres(s, log=progress)
    services.ensure_metastore(s, log=progress)
    services.init_airflow(s, log=progress)
    dbt_parse(s)
    progress("setup done")


def dbt_parse(s: Settings) -> None:
    """The dbt manifest Cosmos renders the gold DAG from (dbt/target/manifest.json)."""
    from dbt.cli.main import dbtRunner

    res = dbtRunner().invoke(["parse", "--project-dir", str(s.dbt_dir), "--profiles-dir", str(s.dbt_dir),
                              "--target-path", str(s.dbt_dir / "target"), "--quiet"])
    if not res.success:
        raise SystemExit(f"dbt parse failed: {res.exception}")
    progress("dbt: manifest written to dbt/target/manifest.json")


def cmd_generate(s: Settings, args) -> None:
    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import flaw_summary, generate

    as_of = date.fromisoformat(args.as_of)
    progress(f"generating legacy deliveries: SF{s.scale_factor}, as of {as_of}, +{args.days} daily deliveries")
    deliveries = generate(load_catalog(s.catalog_dir), s.landing_dir, s.scale_factor, s.seed, as_of, days=args.days,
                          tables=s.legacy_table_list)
    rows = sum(sum(d.rows.values()) for d in deliveries)
    progress(f"legacy: {len(deliveries)} deliveries, {rows} rows in {s.landing_dir / 'legacy'}; "
             f"flaws injected: {flaw_summary(deliveries)}")
    if args.feed_days > 0:
        generate_feeds(s, as_of, args.days, args.feed_days)


def generate_feeds(s: Settings, as_of: date, days: int, feed_days: int) -> None:
    """The live feeds of the last ``feed_days`` days of the legacy world (the people it holds on its last
    day, in its units, with its incidents): the history as the centres' systems re-send it (6-hour
    deliveries), the last day as they stream it (15-minute deliveries)."""
    from datetime import datetime, timedelta

    from smartrehab.feeds.contracts import CST
    from smartrehab.feeds.persons import legacy_persons
    from smartrehab.feeds.simulator import simulate

    end = datetime.combine(as_of + timedelta(days=days + 1), datetime.min.time(), tzinfo=CST)
    start, last_day = end - timedelta(days=feed_days), end - timedelta(days=1)
    persons = legacy_persons(s, as_of, days)
    lines = 0
    for a, b, minutes in ((start, last_day, 360), (last_day, end, 15)):
        if b > a:
            manifest = simulate(a, b, settings=s, persons=persons, batch_minutes=minutes)
            lines += sum(manifest["counts"]["lines"].values())
    progress(f"feeds: {feed_days} days ({start:%Y-%m-%d} .. {last_day:%Y-%m-%d}), {len(persons)} people, "
             f"{lines} lines in {s.landing_dir / 'feeds'}")


def run_dag(dag_id: str) -> None:
    """Run one DAG in this process with ``dag.test()`` and fail loudly if any task failed."""
    from airflow.dag_processing.dagbag import DagBag

    from smartrehab.settings import get_settings

    s = get_settings()
    bag = DagBag(dag_folder=str(s.repo_root / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    progress(f"airflow: running {dag_id} ({len(dag.tasks)} tasks)")
    run = dag.test()
    state = str(getattr(run, "state", ""))
    if "success" not in state:
        raise SystemExit(f"{dag_id} ended in state {state}; see the task logs above")
    progress(f"airflow: {dag_id} succeeded")


def cmd_run(s: Settings, args) -> None:
    import os

    from smartrehab import services

    services.start_postgres(s, log=progress)
    os.environ.update(services.airflow_env(s))
    for dag_id in args.dags:
        run_dag(dag_id)


def cmd_serve(s: Settings, live: bool = False, as_of: str = "2026-11-20", days: int = 1) -> None:
    from smartrehab import services, superset
    from smartrehab.access import directory

    directory.start(s, log=progress)
    services.start_postgres(s, log=progress)
    services.start_thrift(s, log=progress)
    from smartrehab import audit

    audit.register_on_endpoint(s)
    services.start_mlflow(s, log=progress)
    services.start_airflow(s, log=progress)
    services.start_superset(s, log=progress)
    superset.import_bundle(s, update_existing=True, log=progress)
    progress("superset: dashboards imported from superset_assets/")
    if live:
        services.start_feeds_live(s, as_of, days, log=progress)
    print_addresses(s)


def print_addresses(s: Settings) -> None:
    from smartrehab import services

    print(f"""
  Superset (dashboards)   http://127.0.0.1:{s.superset_port}   login {s.superset_admin} / password in {s.secrets_dir / 'superset_admin_password'}
                          or a directory user (ju.lingdao 局领导, suo.bj01 所领导, fenxi.01 分析员, ...) / {s.secrets_dir / 'ldap_user_<uid>'}
  Directory (LDAP)        {s.ldap_uri}   base {s.ldap_base_dn}; roles in infra/access/roles.yaml
  Airflow                 http://127.0.0.1:{s.airflow_port}   login admin / {services.airflow_password(s)}
  MLflow                  http://127.0.0.1:{s.mlflow_port}
  SQL endpoint (JDBC)     jdbc:hive2://{s.thrift_host}:{s.thrift_port}/gold   (beeline, PyHive, DBeaver: a directory user and
                          password, LDAP; e.g. fenxi.01 / {s.secrets_dir / 'ldap_user_fenxi.01'})
  Metastore (PostgreSQL)  {s.pg_host}:{s.pg_port} db {s.pg_metastore_db}
  Lake                    {s.storage_root}
  Stop everything:        smartrehab stop
""", flush=True)


def cmd_status(s: Settings) -> None:
    from smartrehab import jars, services

    for name, state in services.status(s).items():
        print(f"  {name:9s} {state}")
    problems = jars.verify_jars(s)
    print(f"  jars      {'ok' if not problems else '; '.join(problems)}")


def cmd_coverage(s: Settings) -> None:
    from smartrehab.catalog import load_catalog
    from smartrehab.coverage import write_report

    dbt_parse(s)
    out = s.repo_root / "docs" / "legacy_coverage.csv"
    rows = write_report(load_catalog(s.catalog_dir), s.dbt_dir / "target" / "manifest.json", out)
    used = sum(1 for r in rows if r["staging_models"])
    progress(f"coverage: {len(rows)} items, {used} used by dbt models; written to {out}")


def cmd_audit_verify(s: Settings) -> int:
    from smartrehab import audit

    verdict = audit.verify(s)
    if verdict.ok:
        print(f"audit: {audit.TABLE} intact, {verdict.records} records chained ({audit.table_path(s)})")
        return 0
    print(f"audit: {audit.TABLE} FAILS verification ({verdict.records} records read):", file=sys.stderr)
    for problem in verdict.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_stop(s: Settings) -> None:
    from smartrehab import services

    services.stop_all(s, log=progress)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["export", "verify"]:  # the receiver's verifier parses its own arguments
        from smartrehab.exchange.verify import main as verify_main

        return verify_main(argv[2:])
    parser = argparse.ArgumentParser(prog="smartrehab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup")
    g = sub.add_parser("generate")
    g.add_argument("--as-of", default="2026-11-20", help="day of the full extract (YYYY-MM-DD)")
    g.add_argument("--days", type=int, default=1, help="daily incremental deliveries after it")
    g.add_argument("--feed-days", type=int, default=FEED_DAYS, help="days of live feeds up to the last day (0: none)")
    r = sub.add_parser("run")
    r.add_argument("--dags", nargs="+", default=PIPELINE)
    sv = sub.add_parser("serve")
    sv.add_argument("--live", action="store_true",
                    help="also run the live-feed simulator and unpause feeds_ingest and security_score")
    sv.add_argument("--as-of", default="2026-11-20", help="as `generate --as-of` (the world the simulator continues)")
    sv.add_argument("--days", type=int, default=1, help="as `generate --days`")
    sub.add_parser("status")
    sub.add_parser("stop")
    sub.add_parser("coverage", help="write docs/legacy_coverage.csv: where every legacy item goes")
    e = sub.add_parser("export", help="data exchange packages (docs/exchange)")
    esub = e.add_subparsers(dest="export_cmd", required=True)
    esub.add_parser("verify", help="check a package: checksums, SM3, signature, schema", add_help=False)
    au = sub.add_parser("audit", help="the audit trail audit.access_log (docs/security.md)")
    ausub = au.add_subparsers(dest="audit_cmd", required=True)
    ausub.add_parser("verify", help="chain the SQL endpoint's spooled statements, then recompute the hash chain; "
                                    "exit 1 naming the first deleted or altered record")
    ausub.add_parser("ingest", help="chain the SQL endpoint's spooled statements into audit.access_log")
    d = sub.add_parser("demo")
    d.add_argument("--as-of", default="2026-11-20")
    d.add_argument("--days", type=int, default=1)
    d.add_argument("--feed-days", type=int, default=FEED_DAYS)
    d.add_argument("--dags", nargs="+", default=PIPELINE)
    d.add_argument("--no-live", action="store_true", help="leave the feeds still: no live simulator")
    args = parser.parse_args(argv)
    s = get_settings()
    from smartrehab.jars import JarCacheError
    from smartrehab.services import ServiceError

    try:
        if args.cmd == "setup":
            cmd_setup(s)
        elif args.cmd == "generate":
            cmd_generate(s, args)
        elif args.cmd == "run":
            cmd_run(s, args)
        elif args.cmd == "serve":
            cmd_serve(s, args.live, args.as_of, args.days)
        elif args.cmd == "status":
            cmd_status(s)
        elif args.cmd == "stop":
            cmd_stop(s)
        elif args.cmd == "coverage":
            cmd_coverage(s)
        elif args.cmd == "audit":
            from smartrehab import audit

            n = audit.ingest_spool(s)
            print(f"audit: {n} statements of the SQL endpoint chained into {audit.TABLE}")
            if args.audit_cmd == "ingest":
                return 0
            return cmd_audit_verify(s)
        elif args.cmd == "demo":
            cmd_setup(s)
            cmd_generate(s, args)
            cmd_run(s, args)
            cmd_serve(s, not args.no_live, args.as_of, args.days)
            progress("demo ready")
    except (ServiceError, JarCacheError) as exc:
        print(f"smartrehab {args.cmd}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
