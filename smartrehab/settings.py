"""The one settings object of the platform.

Built once from defaults, then the environment (``SMARTREHAB_*``). No other module reads the
environment on its own: everything asks ``get_settings()``.

Defaults give the embedded single-machine layout: every file a run creates sits under ``var/``
of the repository (ignored by git). Pointing the platform at a cluster and object storage is a
matter of configuration only::

    SMARTREHAB_SPARK_MASTER=spark://spark-master:7077
    SMARTREHAB_STORAGE_ROOT=s3a://bureau-lake/smartrehab
    SMARTREHAB_SPARK_CONF='spark.hadoop.fs.s3a.endpoint=https://minio.internal;spark.hadoop.fs.s3a.path.style.access=true'
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

LAYERS = ("bronze", "silver", "gold", "quarantine", "audit")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically: a reader (a running server, a
    second process) sees the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)

@dataclass(frozen=True)
class Settings:
    """Paths, addresses and the secret source. ``SMARTREHAB_<FIELD>`` overrides each field."""

    repo_root: Path = REPO_ROOT
    var_dir: Path = REPO_ROOT / "var"
    # Where Delta tables live: a local folder, or an object-store URI (s3a://, abfss://, gs://).
    storage_root: str = ""
    # Where generated (or delivered) legacy extracts and feed files land.
    landing_dir: Path = Path()
    spark_master: str = "local[2]"
    # "auto": 35 % of the machine's memory, between 2g and 16g (8g on a 24 GiB machine, what an SF1
    # legacy load needs); or a JVM size such as "6g".
    spark_driver_memory: str = "auto"
    spark_shuffle_partitions: int = 4
    # Extra Spark settings, "key=value;key=value" (object-store credentials come from the
    # secret source or the cluster's own configuration, never from here).
    spark_conf: str = ""
    # Hive metastore on PostgreSQL, shared by jobs, dbt and the SQL endpoint.
    pg_host: str = "127.0.0.1"
    pg_port: int = 5433
    pg_user: str = "smartrehab"
    pg_metastore_db: str = "metastore"
    # Use an already-running PostgreSQL instead of starting the embedded one.
    pg_external: bool = False
    thrift_host: str = "127.0.0.1"
    thrift_port: int = 10000
    airflow_port: int = 8080
    airflow_parallelism: int = 4
    mlflow_port: int = 5000
    mlflow_tracking_uri: str = ""
    superset_port: int = 8088
    superset_admin: str = "admin"
    # The directory every login authenticates against (docs/security.md). Empty ldap_url: the embedded
    # OpenLDAP (slapd) on 127.0.0.1:ldap_port, seeded from infra/access/roles.yaml; in production the
    # bureau's directory, e.g. ldaps://dir.bureau.internal:636, with its own base DN.
    ldap_port: int = 3890
    ldap_url: str = ""
    ldap_base_dn: str = "dc=smartrehab,dc=invalid"
    # Audit records (audit.access_log) are kept at least this many days (网络安全法 Art. 21: six months);
    # values under 183 are refused.
    audit_retention_days: int = 400
    # Secret source: "file" keeps generated secrets in var/secrets (mode 0600);
    # "env" reads SMARTREHAB_SECRET_<NAME> (e.g. from a vault agent or CI secret store).
    secret_source: str = "file"
    # Scale factor for generated data (SF1 = 3 centres, 2,700 beds).
    scale_factor: float = 0.01
    seed: int = 20261128
    # Legacy tables to generate and load, comma-separated; empty means every catalog table.
    legacy_tables: str = ""
    # Legacy files loaded side by side (threads sharing one Spark session): a small file's
    # time is mostly commit latency, so a few more threads than cores keeps the cores busy.
    legacy_load_threads: int = 4
    # A delivery day whose files total at most this many MiB (an incremental day: 25 KB at SF0.01)
    # runs with Spark's interpreted row projections instead of generated code. Each Delta commit
    # rebuilds table state in tasks whose projections Spark would generate and format anew every time
    # (a fifth of the driver's CPU on such a day); for a few rows, interpreting them is cheaper.
    # 0 keeps generated code for every day.
    legacy_interpreted_max_mib: float = 8.0
    _env: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- derived paths -------------------------------------------------------------------
    @property
    def jars_dir(self) -> Path:
        # A download cache shared by every var dir of this checkout (tests use their own var dir).
        return self.repo_root / "var" / "jars"

    @property
    def legacy_table_list(self) -> list[str] | None:
        names = [t.strip() for t in self.legacy_tables.split(",") if t.strip()]
        return names or None

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"

    @property
    def run_dir(self) -> Path:
        """Pid files and service logs."""
        return self.var_dir / "run"

    @property
    def pg_data_dir(self) -> Path:
        return self.var_dir / "pg"

    @property
    def spark_conf_dir(self) -> Path:
        return self.var_dir / "spark-conf"

    @property
    def airflow_home(self) -> Path:
        return self.var_dir / "airflow"

    @property
    def superset_home(self) -> Path:
        return self.var_dir / "superset"

    @property
    def mlflow_dir(self) -> Path:
        return self.var_dir / "mlflow"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return str(self.mlflow_dir / "artifacts")

    @property
    def warehouse(self) -> str:
        return self.storage_root

    @property
    def metastore_jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.pg_host}:{self.pg_port}/{self.pg_metastore_db}"

    @property
    def catalog_dir(self) -> Path:
        return self.repo_root / "catalog"

    @property
    def dbt_dir(self) -> Path:
        return self.repo_root / "dbt"

    @property
    def superset_assets_dir(self) -> Path:
        return self.repo_root / "superset_assets"

    @property
    def superset_venv(self) -> Path:
        return self.repo_root / ".venv-superset"

    # ---- identity and audit ----------------------------------------------------------------
    @property
    def ldap_embedded(self) -> bool:
        return not self.ldap_url

    @property
    def ldap_uri(self) -> str:
        return self.ldap_url or f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldap_dir(self) -> Path:
        """The embedded directory's own config (slapd.d) and database."""
        return self.var_dir / "ldap"

    @property
    def access_roles_file(self) -> Path:
        return self.repo_root / "infra" / "access" / "roles.yaml"

    @property
    def audit_dir(self) -> Path:
        """The audit chain's lock and head anchor (beside, not inside, the lake)."""
        return self.var_dir / "audit"

    def extra_spark_conf(self) -> dict[str, str]:
        pairs = [p for p in self.spark_conf.split(";") if p.strip()]
        out = {}
        for pair in pairs:
            if "=" not in pair:
                raise ValueError(f"SMARTREHAB_SPARK_CONF: '{pair}' is not key=value")
            k, v = pair.split("=", 1)
            out[k.strip()] = v.strip()
        return out

    # ---- secrets ---------------------------------------------------------------------------
    def secret(self, name: str, *, create: bool = True) -> str:
        """A named secret (pseudonymisation key, service passwords) from the secret source.

        With the "file" source a missing secret is generated once (32 random bytes, hex) and
        kept in var/secrets/<name> with mode 0600: it never enters the repository.
        """
        if self.secret_source == "env":
            key = f"SMARTREHAB_SECRET_{name.upper()}"
            value = self._env.get(key)
            if not value:
                raise RuntimeError(f"secret '{name}' not set: export {key} (secret_source=env)")
            return value
        if self.secret_source != "file":
            raise ValueError(f"unknown secret_source '{self.secret_source}' (file or env)")
        path = self.secrets_dir / name
        if path.exists():
            return path.read_text().strip()
        if not create:
            raise RuntimeError(f"secret '{name}' missing at {path}; run `smartrehab setup`")
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value

    def child_env(self) -> dict[str, str]:
        """Environment for the processes the platform starts (Airflow, dbt, Superset, Spark)."""
        env = dict(self._env)
        env.update(
            {
                "SPARK_CONF_DIR": str(self.spark_conf_dir),
                "AIRFLOW_HOME": str(self.airflow_home),
                "MLFLOW_TRACKING_URI": self.tracking_uri,
                "PYTHONPATH": str(self.repo_root),
            }
        )
        for f in fields(self):
            if f.name.startswith("_") or f.name == "repo_root":
                continue
            env[f"SMARTREHAB_{f.name.upper()}"] = str(getattr(self, f.name))
        return env


def _coerce(kind, raw: str):
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (bool, "bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (Path, "Path"):
        return Path(raw)
    return raw


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Defaults, then ``SMARTREHAB_*`` variables of ``env`` (os.environ when None)."""
    env = dict(os.environ if env is None else env)
    base = Settings(_env=env)
    updates = {}
    for f in fields(Settings):
        if f.name.startswith("_"):
            continue
        raw = env.get(f"SMARTREHAB_{f.name.upper()}")
        if raw is not None and raw != "":
            updates[f.name] = _coerce(f.type, raw)
    s = replace(base, **updates)
    derived: dict = {"var_dir": s.var_dir.resolve()}  # services run from other folders
    if not s.storage_root:
        derived["storage_root"] = str(derived["var_dir"] / "lake")
    if s.landing_dir == Path():
        derived["landing_dir"] = derived["var_dir"] / "landing"
    if s.spark_driver_memory == "auto":
        derived["spark_driver_memory"] = auto_driver_memory()
    return replace(s, **derived)


def auto_driver_memory(total_bytes: int | None = None) -> str:
    """35 % of physical memory in whole GiB, at least 2g and at most 16g."""
    if total_bytes is None:
        total_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{min(16, max(2, int(total_bytes * 0.35 / 2**30)))}g"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
