"""One Spark configuration for every Spark process: jobs, dbt, the SQL endpoint.

``spark_conf()`` is the single source. ``write_spark_defaults()`` renders it to
``var/spark-conf/spark-defaults.conf`` so that processes that build their own session (dbt's
session adapter, the Thrift server started by spark-submit) see exactly the same catalog,
Delta and metastore settings through ``SPARK_CONF_DIR``.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from smartrehab.jars import jar_paths
from smartrehab.settings import LAYERS, Settings, get_settings, write_private


def spark_conf(s: Settings) -> dict[str, str]:
    jars = [str(p) for p in jar_paths(s)]
    conf = {
        "spark.master": s.spark_master,
        "spark.driver.memory": s.spark_driver_memory,
        "spark.jars": ",".join(jars),
        # The JDBC driver must be on the driver's own class path for the metastore.
        "spark.driver.extraClassPath": ":".join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": s.warehouse,
        "spark.sql.shuffle.partitions": str(s.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "Asia/Shanghai",
        "spark.sql.sources.default": "delta",
        "spark.ui.enabled": "false",
        # Python workers run in the platform's own environment (pandas UDFs need its packages).
        "spark.pyspark.python": sys.executable,
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta rebuilds table state with 50 partitions by default: on small tables and few
        # cores that alone makes every commit take ~10 s instead of ~2 s.
        "spark.databricks.delta.snapshotPartitions": str(max(1, s.spark_shuffle_partitions // 2)),
        "spark.sql.metadataCacheTTLSeconds": "5",
        # Generated classes are cached by their code, 100 by default: fewer than the distinct
        # projections of the 69 legacy tables' bronze, silver and Delta-state plans, so a legacy day
        # kept compiling the same classes again (about 10 % of an incremental day).
        "spark.sql.codegen.cache.maxEntries": "4000",
        # SCD2 merges close a few current rows per load: deletion vectors mark them instead of
        # rewriting whole data files.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "true",
        # Tungsten's memory page: by default execution memory / cores / 16, capped at 64 MiB, which an 8 GiB
        # driver on 2 cores reaches. A hash relation built for a broadcast join (the orphan checks' parent
        # keys: a few thousand keys) holds at least one page while its broadcast lives: on an SF1 incremental
        # legacy day 3 GiB of the driver heap, and most of its garbage collection (bench/README.md, "Where a
        # legacy day's time goes"). A record larger than a page still gets a page of its own size.
        "spark.buffer.pageSize": "2m",
        # Delta's metadata-only answers to min/max on date columns throw a ClassCastException
        # (LocalDate vs java.sql.Date) on the SQL endpoint; read the data instead.
        "spark.databricks.delta.optimizeMetadataQuery.enabled": "false",
        "spark.hadoop.javax.jdo.option.ConnectionURL": s.metastore_jdbc_url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": s.pg_user,
        "spark.hadoop.javax.jdo.option.ConnectionPassword": s.secret("pg_password"),
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
        "spark.hadoop.hive.metastore.warehouse.dir": s.warehouse,
        # The parallel collector: on 2 cores G1's concurrent work cost about a tenth of the CPU of an SF1
        # incremental legacy day (bench/README.md, "Where a legacy day's time goes").
        "spark.driver.extraJavaOptions": "-XX:+UseParallelGC -Dderby.system.home=" + str(s.var_dir / "derby"),
    }
    conf.update(s.extra_spark_conf())
    return conf


def write_spark_defaults(s: Settings | None = None) -> Path:
    s = s or get_settings()
    s.spark_conf_dir.mkdir(parents=True, exist_ok=True)
    path = s.spark_conf_dir / "spark-defaults.conf"
    body = "".join(f"{k} {v}\n" for k, v in sorted(spark_conf(s).items()))
    write_private(path, "# Written by smartrehab from the settings object; do not edit.\n" + body)
    log4j = s.spark_conf_dir / "log4j2.properties"
    log4j.write_text(
        "rootLogger.level = warn\nrootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\nappender.console.name = console\n"
        "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n"
        "logger.thrift.name = org.apache.spark.sql.hive.thriftserver\nlogger.thrift.level = info\n"
        # Delta tables are kept in the metastore in Spark's own format; Hive's attempt to read
        # them as Hive tables logs harmless stack traces.
        "logger.hivecat.name = org.apache.spark.sql.hive.HiveExternalCatalog\nlogger.hivecat.level = error\n"
        "logger.hms.name = org.apache.hadoop.hive.metastore\nlogger.hms.level = fatal\n"
        "logger.hiveql.name = org.apache.hadoop.hive.ql.metadata.Hive\nlogger.hiveql.level = fatal\n"
    )
    return path


def get_spark(app_name: str = "smartrehab", s: Settings | None = None):
    """The process's SparkSession, configured from the settings; creates the layer databases."""
    from pyspark.sql import SparkSession

    s = s or get_settings()
    write_spark_defaults(s)
    os.environ["SPARK_CONF_DIR"] = str(s.spark_conf_dir)
    # PySpark picks its worker interpreter from this variable when the context starts (the
    # spark.pyspark.python setting only reaches executors launched by spark-submit).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if _jvm_died():
        # The JVM behind this process's session is gone (most often a Java heap OutOfMemoryError in
        # an earlier task): forget it so that a retry starts a fresh session instead of failing at once.
        print(f"spark: the JVM of this process's Spark session has died; starting a new one. If it ran out of "
              f"memory, raise SMARTREHAB_SPARK_DRIVER_MEMORY (now {s.spark_driver_memory}).", file=sys.stderr)
        _forget()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    for k, v in spark_conf(s).items():
        builder = builder.config(k, v)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    ensure_databases(spark, s)
    return spark


def _jvm_died() -> bool:
    """This process started a Spark JVM and it no longer answers (or its context was stopped)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return False
    try:
        return bool(sc._jsc.sc().isStopped())
    except Exception:  # py4j: the gateway's JVM has exited
        return True


def _forget() -> None:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    gateway = SparkContext._gateway
    if gateway is not None:
        try:
            gateway.shutdown()
        except Exception:  # the JVM is gone already
            pass
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
    SparkContext._active_spark_context = None
    SparkContext._gateway = None
    SparkContext._jvm = None


OUT_OF_MEMORY = ("OutOfMemoryError", "Java heap space", "GC overhead limit exceeded")


def explain_out_of_memory(err: BaseException, s: Settings) -> str | None:
    """The message for a failure that is a JVM out-of-memory, naming the setting to change; None otherwise."""
    text = f"{type(err).__name__}: {err}"
    cause = err.__cause__ or err.__context__
    if cause is not None:
        text += f" {cause}"
    dead = type(err).__name__ in ("Py4JNetworkError", "ConnectionRefusedError") or "Answer from Java side is empty" in text
    if not (any(m in text for m in OUT_OF_MEMORY) or dead):
        return None
    return (f"the Spark driver ran out of memory (or its JVM died) with spark.driver.memory={s.spark_driver_memory}: "
            "set SMARTREHAB_SPARK_DRIVER_MEMORY to a larger size (e.g. twice that) or lower "
            "SMARTREHAB_SCALE_FACTOR, then run again")


CODEGEN_FACTORY_MODE = "spark.sql.codegen.factoryMode"


@contextmanager
def interpreted_projections(spark):
    """Within the block, Spark evaluates row projections by interpretation instead of generating,
    formatting and compiling Java code for them (whole-stage code generation is unchanged).

    For work made of many small Delta commits: every commit's table-state tasks would generate their
    projections anew (the compiled class is cached, the code generation before the cache lookup is
    not). A session-wide runtime setting, restored on the way out."""
    before = spark.conf.get(CODEGEN_FACTORY_MODE, None)
    spark.conf.set(CODEGEN_FACTORY_MODE, "NO_CODEGEN")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(CODEGEN_FACTORY_MODE)
        else:
            spark.conf.set(CODEGEN_FACTORY_MODE, before)


def ensure_databases(spark, s: Settings) -> None:
    for layer in LAYERS:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer} LOCATION '{s.warehouse}/{layer}.db'")
