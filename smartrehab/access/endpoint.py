"""The SQL endpoint's login, grants and statement audit (docs/security.md, "The SQL endpoint").

* **Login:** HiveServer2's LDAP provider against the directory (``hive.server2.authentication=LDAP``); a person
  binds as ``uid=<name>,ou=people,<base>``, a service account as ``uid=<name>,ou=services,<base>``. No password,
  no session.
* **Grants:** ``EndpointAccess`` (``smartrehab/access/jvm/EndpointAccess.java``, compiled at the endpoint's start
  with the JDK the platform needs anyway) checks every analysed plan against the access plan rendered here: for
  each member of a directory group, the tables of its role's ``sql_endpoint`` entry in infra/access/roles.yaml.
  The restricted tables (``RESTRICTED``) are refused to every role without ``restricted``, except a table a role
  names exactly; writes are refused to every role without ``write``. ``refresh`` re-renders the plan from the
  directory (the running endpoint re-reads the file when it changes).
* **Audit:** the extension appends one JSON line per statement (allowed or refused) to the spool;
  ``smartrehab.audit.ingest_spool`` chains them into ``audit.access_log``.

Python clients connect with ``connect(s, uid)``: the uid's password from the secrets, ``auth="LDAP"``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path

from smartrehab.access import directory
from smartrehab.access.roles import Access, load_access
from smartrehab.settings import Settings, write_private

SOURCE = Path(__file__).resolve().parent / "jvm" / "EndpointAccess.java"
EXTENSION_CLASS = "smartrehab.access.EndpointAccess"
PIPELINE_ACCOUNT = "svc.pipeline"  # the platform's own service account (data_engineer)
# Tables that hold clear or encrypted identifiers: refused unless the role has `restricted` (or names one exactly).
RESTRICTED = ("bronze.*", "quarantine.*", "silver.restricted_identity")
# What a token of a role's `sql_endpoint` list grants; any other token must be `db.table` or `db.*`.
TOKENS = {
    "gold": ("gold.*",),
    "silver": ("silver.*",),
    "silver_pseudonymised": ("silver.*",),
    "bronze": ("bronze.*",),
    "quarantine": ("quarantine.*",),
    "audit": ("audit.*",),
    "research": ("research.*",),
    "restricted": RESTRICTED,
}
FLAGS = ("restricted", "write")


def jar_path(s: Settings) -> Path:
    return s.var_dir / "jvm" / "smartrehab-endpoint-access.jar"


def build_jar(s: Settings) -> Path:
    """Compile the extension against pyspark's own jars (again only when the source changed)."""
    from smartrehab.services import spark_home

    out = jar_path(s)
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    stamp = out.with_suffix(".sha")
    if out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    javac = shutil.which("javac")
    if not javac:
        raise RuntimeError("javac not found: the SQL endpoint's access check is compiled at start; run "
                           "`bash infra/setup.sh` (it installs openjdk-17-jdk-headless)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([javac, "-nowarn", "-encoding", "UTF-8", "-d", tmp, "-cp",
                              str(spark_home() / "jars" / "*"), str(SOURCE)], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"javac {SOURCE.name} failed:\n{res.stderr[-3000:]}")
        jar = shutil.which("jar") or str(Path(javac).with_name("jar"))
        res = subprocess.run([jar, "cf", str(out), "-C", tmp, "."], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"jar failed: {res.stderr}")
    stamp.write_text(digest)
    return out


def plan_path(s: Settings) -> Path:
    return s.var_dir / "jvm" / "endpoint_access.plan"


def spool_path(s: Settings) -> Path:
    return s.audit_dir / "sql_endpoint.spool.jsonl"


def grants_of(access: Access, role_keys: set[str]) -> tuple[list[str], list[str], bool]:
    """(read patterns, deny patterns, write) of a member of these roles."""
    read: list[str] = []
    tokens = {t for k in role_keys for t in access.roles[k].sql_endpoint}
    for t in sorted(tokens):
        if t in FLAGS and t != "restricted":
            continue
        read += TOKENS.get(t, (t,))
    deny = [] if "restricted" in tokens else list(RESTRICTED)
    return sorted(set(read)), deny, "write" in tokens


def check_tokens(access: Access) -> list[str]:
    """Problems of the roles file's `sql_endpoint` entries (unknown tokens)."""
    bad = []
    for r in access.roles.values():
        for t in r.sql_endpoint:
            if t in TOKENS or t in FLAGS:
                continue
            db, _, table = t.partition(".")
            if not (db and table and db.replace("_", "").isalnum() and (table == "*" or table.replace("_", "").isalnum())):
                bad.append(f"role {r.key}: sql_endpoint entry {t!r} is neither one of {sorted(TOKENS)} nor db.table")
    return bad


def members(s: Settings, access: Access) -> dict[str, set[str]]:
    """uid -> role keys, from the directory's groups (what the bureau's directory says, not the demo list)."""
    out: dict[str, set[str]] = {}
    ldif = directory.search(s, directory.admin_dn(s), s.secret("ldap_admin_password"), directory.groups_dn(s),
                            "(objectClass=groupOfNames)", "cn", "member")
    by_cn = {g.cn: g for g in access.groups()}
    cn = None
    for line in ldif.splitlines():
        if line.startswith("cn: "):
            cn = line[4:].strip()
        elif line.startswith("member: ") and cn in by_cn:
            dn = line[8:].strip()
            first = dn.split(",")[0]
            if first.lower().startswith("uid="):
                out.setdefault(first[4:], set()).add(by_cn[cn].role.key)
    return out


def render_plan(s: Settings, access: Access | None = None) -> str:
    access = access or load_access(s.access_roles_file, s.catalog_dir)
    bad = check_tokens(access)
    if bad:
        raise ValueError(f"{s.access_roles_file}: " + "; ".join(bad))
    lines = ["# user\trole\twrite\tread\tdeny  (smartrehab.access.endpoint; rendered from the directory)"]
    for uid, keys in sorted(members(s, access).items()):
        read, deny, write = grants_of(access, keys)
        lines.append("\t".join([uid, "+".join(sorted(keys)), "1" if write else "0", ",".join(read), ",".join(deny)]))
    return "\n".join(lines) + "\n"


def refresh(s: Settings) -> Path:
    """Write the access plan (atomically: the endpoint may be reading it)."""
    write_private(plan_path(s), render_plan(s))
    return plan_path(s)


def server_args(s: Settings) -> tuple[list[str], list[str]]:
    """(spark-submit options, HiveServer2 options) of the Thrift server: the extension, its files, the LDAP login."""
    from smartrehab.spark import spark_conf

    jar = build_jar(s)
    refresh(s)
    spool_path(s).parent.mkdir(parents=True, exist_ok=True)
    conf = spark_conf(s)  # what every session of the platform has (spark-defaults.conf), plus the check
    submit = [
        "--conf", f"spark.jars={conf['spark.jars']},{jar}",
        "--conf", f"spark.driver.extraClassPath={conf['spark.driver.extraClassPath']}:{jar}",
        "--conf", f"spark.sql.extensions={conf['spark.sql.extensions']},{EXTENSION_CLASS}",
        "--conf", f"spark.smartrehab.access.plan={plan_path(s)}",
        "--conf", f"spark.smartrehab.access.spool={spool_path(s)}",
    ]
    hive = [
        "--hiveconf", "hive.server2.authentication=LDAP",
        "--hiveconf", f"hive.server2.authentication.ldap.url={s.ldap_uri}",
        "--hiveconf", "hive.server2.authentication.ldap.userDNPattern="
                      f"uid=%s,{directory.people_dn(s)}:uid=%s,{directory.services_dn(s)}",
        # Each statement runs as a proxy of the logged-in user: that is the user the access check sees.
        "--hiveconf", "hive.server2.enable.doAs=true",
    ]
    return submit, hive


def connect(s: Settings, uid: str = PIPELINE_ACCOUNT, password: str | None = None, database: str = "default"):
    """A PyHive connection to the endpoint as ``uid`` (its password from the secrets unless given)."""
    from pyhive import hive

    return hive.connect(host=s.thrift_host, port=s.thrift_port, username=uid, auth="LDAP", database=database,
                        password=directory.user_password(s, uid) if password is None else password)


def rows(s: Settings, sql: str, uid: str = PIPELINE_ACCOUNT) -> list[tuple]:
    with closing(connect(s, uid)) as conn, closing(conn.cursor()) as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else []
