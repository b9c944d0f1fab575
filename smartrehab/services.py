"""Start, check and stop the services of the embedded platform.

PostgreSQL (Hive metastore, 127.0.0.1:5433), the Spark Thrift Server (SQL endpoint,
127.0.0.1:10000), MLflow's UI (127.0.0.1:5000), Airflow standalone (127.0.0.1:8080) and
Superset (127.0.0.1:8088). Each service keeps a pid file and a log in ``var/run``; starting a
running service is a no-op, a stale pid file (a half-finished earlier run) is cleared, and a
port held by a foreign process is reported with the process that holds it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smartrehab.settings import Settings
from smartrehab.spark import write_spark_defaults


class ServiceError(RuntimeError):
    pass


# ---- small process helpers ------------------------------------------------------------------
def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_holder(port: int) -> str:
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
        return out.strip() or "unknown process"
    except FileNotFoundError:
        return "unknown process (install iproute2 for details)"


def _pidfile(s: Settings, name: str) -> Path:
    return s.run_dir / f"{name}.pid"


def _running_pid(s: Settings, name: str) -> int | None:
    pf = _pidfile(s, name)
    if not pf.exists():
        return None
    try:
        pid = int(pf.read_text().strip())
    except ValueError:
        pid = -1
    if pid > 0 and _pid_alive(pid):
        return pid
    pf.unlink(missing_ok=True)  # stale: left by a crashed or killed earlier run
    return None


def _wait_port(host: str, port: int, timeout: float, name: str, pid: int | None, log: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(host, port):
            return
        if pid is not None and not _pid_alive(pid):
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise ServiceError(f"{name} exited during start-up; last lines of {log}:\n{tail}")
        time.sleep(0.5)
    raise ServiceError(f"{name} did not open {host}:{port} within {timeout:.0f}s; see {log}")


def _spawn(s: Settings, name: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    s.run_dir.mkdir(parents=True, exist_ok=True)
    log = s.run_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    _pidfile(s, name).write_text(str(proc.pid))
    return proc.pid


def _stop_pid(s: Settings, name: str, timeout: float = 30) -> bool:
    pid = _running_pid(s, name)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + timeout
    while time.time() < deadline and _pid_alive(pid):
        time.sleep(0.3)
    if _pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _pidfile(s, name).unlink(missing_ok=True)
    return True


def _check_port_free(host: str, port: int, name: str, setting: str) -> None:
    if port_open(host, port):
        raise ServiceError(
            f"{name}: port {host}:{port} is already taken by {_port_holder(port)}. "
            f"Stop that process, or choose another port with {setting}."
        )


def venv_bin(s: Settings, tool: str) -> str:
    """A tool of the main environment (the one this interpreter runs in)."""
    return str(Path(sys.executable).parent / tool)


def check_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java is not installed: Spark needs a JDK 17 (`apt-get install openjdk-17-jdk-headless`).")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else "unknown"
    if '"17' not in first and '"21' not in first:
        raise ServiceError(f"Spark 4.2 needs Java 17 or 21; found {first}. Set JAVA_HOME to a JDK 17.")
    return first


# ---- PostgreSQL (metastore) -------------------------------------------------------------------
def _pg_bin(tool: str) -> str:
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if cands:
        return cands[-1]
    found = shutil.which(tool)
    if found:
        return found
    raise ServiceError(f"PostgreSQL's {tool} not found: `apt-get install postgresql` (infra/setup.sh does)")


def _as_pg_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; on a root machine (CI) it runs as the postgres user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _chown_pg(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def pg_env(s: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["PGPASSWORD"] = s.secret("pg_password")
    return env


def psql(s: Settings, sql: str, db: str = "postgres") -> str:
    cmd = [_pg_bin("psql"), "-h", s.pg_host, "-p", str(s.pg_port), "-U", s.pg_user, "-d", db,
           "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql]
    res = subprocess.run(cmd, capture_output=True, text=True, env=pg_env(s))
    if res.returncode != 0:
        raise ServiceError(f"psql failed on {db}: {res.stderr.strip()}")
    return res.stdout.strip()


def start_postgres(s: Settings, log=print) -> None:
    if s.pg_external:
        if not port_open(s.pg_host, s.pg_port):
            raise ServiceError(f"external PostgreSQL at {s.pg_host}:{s.pg_port} does not answer")
        return
    data = s.pg_data_dir / "data"
    sock = s.run_dir / "pgsock"
    logf = s.run_dir / "postgres.log"
    s.run_dir.mkdir(parents=True, exist_ok=True)
    for d in (s.pg_data_dir, sock):
        d.mkdir(parents=True, exist_ok=True)
        _chown_pg(d)
    if not (data / "PG_VERSION").exists():
        if data.exists():
            log(f"postgres: {data} is a half-made cluster from an earlier run; recreating it")
            shutil.rmtree(data)
        log("postgres: initialising the metastore cluster")
        with tempfile.NamedTemporaryFile("w", delete=False, dir=s.pg_data_dir) as pw:
            pw.write(s.secret("pg_password") + "\n")
        _chown_pg(Path(pw.name))
        try:
            res = subprocess.run(
                _as_pg_user([_pg_bin("initdb"), "-D", str(data), "-U", s.pg_user, "--pwfile", pw.name,
                             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                             "--locale=C.UTF-8"]),
                capture_output=True, text=True)
        finally:
            os.unlink(pw.name)
        if res.returncode != 0:
            raise ServiceError(f"initdb failed: {res.stderr.strip()}")
    status = subprocess.run(_as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "status"]),
                            capture_output=True, text=True)
    if status.returncode != 0:
        _check_port_free(s.pg_host, s.pg_port, "postgres", "SMARTREHAB_PG_PORT")
        if os.geteuid() == 0 and not logf.exists():
            logf.touch()
        _chown_pg(logf)
        res = subprocess.run(
            _as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(logf), "-w", "-t", "60", "-o",
                         f"-p {s.pg_port} -k {sock} -c listen_addresses={s.pg_host}", "start"]),
            capture_output=True, text=True)
        if res.returncode != 0:
            raise ServiceError(f"postgres did not start: {res.stderr.strip()} (log: {logf})")
    _wait_port(s.pg_host, s.pg_port, 30, "postgres", None, logf)


def stop_postgres(s: Settings) -> bool:
    data = s.pg_data_dir / "data"
    if s.pg_external or not (data / "PG_VERSION").exists():
        return False
    res = subprocess.run(_as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                         capture_output=True, text=True)
    return res.returncode == 0


def ensure_metastore(s: Settings, log=print) -> None:
    """The metastore database and its schema, created once with DataNucleus' SchemaTool.

    Letting DataNucleus create tables lazily (autoCreateAll) hangs on the first write, so the
    schema is made up front from the package.jdo inside pyspark's hive-metastore jar.
    """
    exists = psql(s, f"select 1 from pg_database where datname='{s.pg_metastore_db}'")
    if not exists:
        psql(s, f'create database "{s.pg_metastore_db}"')
    has_schema = psql(s, "select 1 from information_schema.tables where table_name='DBS'", db=s.pg_metastore_db)
    if has_schema:
        return
    log("metastore: creating the Hive metastore schema")
    import pyspark

    from smartrehab.jars import jar_paths

    spark_jars = Path(pyspark.__file__).parent / "jars"
    metastore_jar = next(spark_jars.glob("hive-metastore-*.jar"))
    pg_jar = next(p for p in jar_paths(s) if p.name.startswith("postgresql-"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["unzip", "-q", "-o", str(metastore_jar), "package.jdo", "-d", tmp], check=True)
        props = Path(tmp) / "dn.properties"
        props.write_text(
            f"javax.jdo.option.ConnectionURL={s.metastore_jdbc_url}\n"
            "javax.jdo.option.ConnectionDriverName=org.postgresql.Driver\n"
            f"javax.jdo.option.ConnectionUserName={s.pg_user}\n"
            f"javax.jdo.option.ConnectionPassword={s.secret('pg_password')}\n"
            "javax.jdo.PersistenceManagerFactoryClass=org.datanucleus.api.jdo.JDOPersistenceManagerFactory\n"
            "datanucleus.schema.autoCreateAll=true\ndatanucleus.identifierFactory=datanucleus1\n"
            "datanucleus.rdbms.useLegacyNativeValueStrategy=true\ndatanucleus.storeManagerType=rdbms\n"
        )
        res = subprocess.run(
            ["java", "-cp", f"{pg_jar}:{spark_jars}/*:.", "org.datanucleus.store.schema.SchemaTool",
             "-create", "-api", "JDO", "-props", "dn.properties", "package.jdo"],
            cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            raise ServiceError(f"metastore schema creation failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    n = psql(s, "select count(*) from information_schema.tables where table_schema='public'", db=s.pg_metastore_db)
    log(f"metastore: schema ready ({n} tables)")


# ---- Spark Thrift Server (SQL endpoint) ---------------------------------------------------------
def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def start_thrift(s: Settings, log=print) -> None:
    if _running_pid(s, "thrift") and port_open(s.thrift_host, s.thrift_port):
        return
    _stop_pid(s, "thrift")
    _check_port_free(s.thrift_host, s.thrift_port, "SQL endpoint", "SMARTREHAB_THRIFT_PORT")
    from smartrehab.access import directory, endpoint

    directory.start(s, log=log)  # logins are checked against it; the access plan is read from it
    write_spark_defaults(s)
    submit_args, hive_args = endpoint.server_args(s)
    env = dict(s.child_env())
    env["SPARK_HOME"] = str(spark_home())
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYSPARK_PYTHON"] = sys.executable
    cmd = [str(spark_home() / "bin" / "spark-submit"),
           "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
           "--name", "smartrehab-sql-endpoint", "--master", "local[1]", "--driver-memory", "1g", *submit_args,
           "spark-internal",
           "--hiveconf", f"hive.server2.thrift.port={s.thrift_port}",
           "--hiveconf", f"hive.server2.thrift.bind.host={s.thrift_host}", *hive_args]
    log(f"sql endpoint: starting Spark Thrift Server on {s.thrift_host}:{s.thrift_port}")
    pid = _spawn(s, "thrift", cmd, env, cwd=s.var_dir)
    _wait_port(s.thrift_host, s.thrift_port, 180, "SQL endpoint", pid, s.run_dir / "thrift.log")


# ---- MLflow UI --------------------------------------------------------------------------------
def start_mlflow(s: Settings, log=print) -> None:
    if _running_pid(s, "mlflow") and port_open("127.0.0.1", s.mlflow_port):
        return
    _stop_pid(s, "mlflow")
    _check_port_free("127.0.0.1", s.mlflow_port, "MLflow", "SMARTREHAB_MLFLOW_PORT")
    s.mlflow_dir.mkdir(parents=True, exist_ok=True)
    cmd = [venv_bin(s, "mlflow"), "server", "--host", "127.0.0.1", "--port", str(s.mlflow_port),
           "--backend-store-uri", s.tracking_uri, "--default-artifact-root", s.mlflow_artifact_root,
           "--workers", "1"]
    log(f"mlflow: starting the UI on 127.0.0.1:{s.mlflow_port}")
    pid = _spawn(s, "mlflow", cmd, s.child_env(), cwd=s.mlflow_dir)
    _wait_port("127.0.0.1", s.mlflow_port, 120, "MLflow", pid, s.run_dir / "mlflow.log")


# ---- Airflow ----------------------------------------------------------------------------------
def airflow_env(s: Settings) -> dict[str, str]:
    env = s.child_env()
    env.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(s.repo_root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(s.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(s.airflow_parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(s.airflow_home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # No usage telemetry leaves the machine (Cosmos and dbt both phone home by default).
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    })
    return env


def airflow_cli(s: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([venv_bin(s, "airflow"), *args], env=airflow_env(s), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise ServiceError(f"airflow {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return res


def init_airflow(s: Settings, log=print) -> None:
    s.airflow_home.mkdir(parents=True, exist_ok=True)
    log("airflow: migrating its metadata database")
    airflow_cli(s, "db", "migrate")


def start_airflow(s: Settings, log=print) -> None:
    if _running_pid(s, "airflow") and port_open("127.0.0.1", s.airflow_port):
        return
    _stop_pid(s, "airflow")
    _check_port_free("127.0.0.1", s.airflow_port, "Airflow", "SMARTREHAB_AIRFLOW_PORT")
    log(f"airflow: starting standalone on 127.0.0.1:{s.airflow_port}")
    pid = _spawn(s, "airflow", [venv_bin(s, "airflow"), "standalone"], airflow_env(s), cwd=s.airflow_home)
    _wait_port("127.0.0.1", s.airflow_port, 240, "Airflow", pid, s.run_dir / "airflow.log")


def airflow_password(s: Settings) -> str:
    path = s.airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return "(written to " + str(path) + " once Airflow has started)"
    import json

    return json.loads(path.read_text()).get("admin", "?")


# ---- Superset ---------------------------------------------------------------------------------
def superset_env(s: Settings) -> dict[str, str]:
    env = s.child_env()
    env.update({
        "SUPERSET_CONFIG_PATH": str(s.repo_root / "infra" / "superset_config.py"),
        "SUPERSET_HOME": str(s.superset_home),
        "SUPERSET_SECRET_KEY": s.secret("superset_secret_key"),
        "FLASK_APP": "superset",
        "PATH": f"{s.superset_venv / 'bin'}:{os.environ.get('PATH', '')}",
    })
    env.pop("PYTHONPATH", None)
    return env


def superset_cli(s: Settings, *args: str) -> subprocess.CompletedProcess:
    exe = s.superset_venv / "bin" / "superset"
    if not exe.exists():
        raise ServiceError(f"Superset is not installed at {s.superset_venv}: run `make setup`")
    res = subprocess.run([str(exe), *args], env=superset_env(s), capture_output=True, text=True,
                         cwd=s.superset_home)
    if res.returncode != 0:
        raise ServiceError(f"superset {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return res


def init_superset(s: Settings, log=print) -> None:
    s.superset_home.mkdir(parents=True, exist_ok=True)
    marker = s.superset_home / ".initialised"
    if marker.exists():
        return
    log("superset: creating its metadata database and admin user")
    superset_cli(s, "db", "upgrade")
    superset_cli(s, "fab", "create-admin", "--username", s.superset_admin, "--firstname", "Bureau",
                 "--lastname", "Admin", "--email", "admin@smartrehab.invalid",
                 "--password", s.secret("superset_admin_password"))
    superset_cli(s, "init")
    marker.write_text("ok\n")


def start_superset(s: Settings, log=print) -> None:
    if _running_pid(s, "superset") and port_open("127.0.0.1", s.superset_port):
        return
    _stop_pid(s, "superset")
    _check_port_free("127.0.0.1", s.superset_port, "Superset", "SMARTREHAB_SUPERSET_PORT")
    init_superset(s, log)
    log(f"superset: starting on 127.0.0.1:{s.superset_port}")
    cmd = [str(s.superset_venv / "bin" / "gunicorn"), "-w", "1", "--threads", "4", "-k", "gthread",
           "--timeout", "120", "-b", f"127.0.0.1:{s.superset_port}", "superset.app:create_app()"]
    pid = _spawn(s, "superset", cmd, superset_env(s), cwd=s.superset_home)
    _wait_port("127.0.0.1", s.superset_port, 180, "Superset", pid, s.run_dir / "superset.log")


# ---- all --------------------------------------------------------------------------------------
SERVICES = ("postgres", "directory", "thrift", "mlflow", "airflow", "superset", "feeds_live")


# ---- live feed simulator ------------------------------------------------------------------------
def start_feeds_live(s: Settings, as_of: str, days: int, log=print) -> None:
    """The live simulator (``smartrehab.feeds.live``) in the background, and the ``feeds_ingest`` and
    ``security_score`` DAGs unpaused: the 15-minute schedule ingests what lands and the score follows."""
    if _running_pid(s, "feeds_live"):
        return
    cmd = [sys.executable, "-m", "smartrehab.feeds.live", "--as-of", as_of, "--days", str(days)]
    log("feeds: starting the live simulator (the world's clock moves with the wall clock)")
    pid = _spawn(s, "feeds_live", cmd, s.child_env(), cwd=s.repo_root)
    time.sleep(2)
    if not _pid_alive(pid):
        tail = (s.run_dir / "feeds_live.log").read_text(errors="replace")[-2000:]
        raise ServiceError(f"the live simulator exited at once; last lines of {s.run_dir / 'feeds_live.log'}:\n{tail}")
    for dag_id in ("feeds_ingest", "security_score"):
        airflow_cli(s, "dags", "unpause", dag_id)
    log("feeds: feeds_ingest (every 15 minutes) and security_score (on new unit-hour aggregates) unpaused")


def status(s: Settings) -> dict[str, str]:
    ports = {"postgres": (s.pg_host, s.pg_port), "thrift": (s.thrift_host, s.thrift_port),
             "mlflow": ("127.0.0.1", s.mlflow_port), "airflow": ("127.0.0.1", s.airflow_port),
             "superset": ("127.0.0.1", s.superset_port), "directory": ("127.0.0.1", s.ldap_port)}
    out = {name: ("up" if port_open(*hp) else "down") + f" {hp[0]}:{hp[1]}" for name, hp in ports.items()}
    if not s.ldap_embedded:
        out["directory"] = f"external {s.ldap_uri}"
    pid = _running_pid(s, "feeds_live")
    out["feeds_live"] = f"up pid {pid}" if pid else "down (no live simulator)"
    return out


def stop_all(s: Settings, log=print) -> None:
    for name in ("feeds_live", "superset", "airflow", "mlflow", "thrift", "slapd"):
        if _stop_pid(s, name):
            log(f"stopped {name}")
    if stop_postgres(s):
        log("stopped postgres")
