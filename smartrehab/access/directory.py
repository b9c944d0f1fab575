"""The directory: an embedded OpenLDAP (``slapd``) on 127.0.0.1, or the bureau's own by configuration.

The embedded one has its own config (``var/ldap/slapd.d``, made with ``slapadd -n0``, never the system's
``/etc/ldap``) and database (``var/ldap/data``), and is seeded from ``infra/access/roles.yaml``:

    dc=smartrehab,dc=invalid             (settings.ldap_base_dn)
      ou=people    uid=<uid>             inetOrgPerson, userPassword {SSHA512}; memberOf (overlay)
      ou=services  uid=svc.*             the service accounts (person: false roles)
      ou=groups    cn=<group>            groupOfNames, one per role, one per centre for centre-scoped roles

Passwords are generated into the var dir's secrets (``ldap_user_<uid>``, ``ldap_admin_password``). The
directory is wholly derived from the roles file and the secrets, so a changed roles file rebuilds it
(``data/.seeded`` holds the checksum of what was loaded). With ``SMARTREHAB_LDAP_URL`` set nothing starts here:
the tools point at that directory and its groups (same group names under ``ou=groups`` of its base DN).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from smartrehab import services
from smartrehab.access.roles import Access, load_access
from smartrehab.settings import Settings

SCHEMAS = ("core", "cosine", "inetorgperson")
MODULE_PATH = "/usr/lib/ldap"


def people_dn(s: Settings) -> str:
    return f"ou=people,{s.ldap_base_dn}"


def services_dn(s: Settings) -> str:
    return f"ou=services,{s.ldap_base_dn}"


def groups_dn(s: Settings) -> str:
    return f"ou=groups,{s.ldap_base_dn}"


def group_dn(s: Settings, cn: str) -> str:
    return f"cn={cn},{groups_dn(s)}"


def admin_dn(s: Settings) -> str:
    return f"cn=admin,{s.ldap_base_dn}"


def user_dn(s: Settings, access: Access, uid: str) -> str:
    user = next((u for u in access.demo_users if u.uid == uid), None)
    person = user is None or access.roles[user.role].person
    return f"uid={uid},{people_dn(s) if person else services_dn(s)}"


def user_password(s: Settings, uid: str) -> str:
    """A demo user's password (generated into the secrets on first use)."""
    return s.secret(f"ldap_user_{uid}")


def ssha512(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def _ldif_value(value: str) -> str:
    """``attr: value`` or ``attr:: base64`` for values LDIF cannot carry as they are (non-ASCII, leading space)."""
    if value.isascii() and value == value.strip() and not value.startswith((":", "<")):
        return f" {value}"
    return ": " + base64.b64encode(value.encode("utf-8")).decode("ascii")


def _entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    lines = [f"dn:{_ldif_value(dn)}"] + [f"{k}:{_ldif_value(v)}" for k, v in attrs]
    return "\n".join(lines) + "\n"


def config_ldif(s: Settings) -> str:
    """cn=config of the embedded slapd: its schemas, mdb database, memberof overlay and access rules."""
    data = s.ldap_dir / "data"
    base = s.ldap_base_dn
    parts = [
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
        "olcLogLevel: stats\n"
        "olcDisallows: bind_anon\nolcRequires: authc\n",
        f"dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\nolcModulePath: {MODULE_PATH}\n"
        "olcModuleLoad: back_mdb\nolcModuleLoad: memberof\nolcModuleLoad: pw-sha2\n",
        "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n",
        *[f"include: file:///etc/ldap/schema/{name}.ldif\n" for name in SCHEMAS],
        "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n"
        "olcDatabase: {-1}frontend\nolcSizeLimit: 500\n",
        # No one reaches cn=config over the network; the service code rebuilds it from this function.
        "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
        "olcAccess: {0}to * by * none\n",
        "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
        f"olcDatabase: {{1}}mdb\nolcDbDirectory: {data}\nolcSuffix: {base}\nolcRootDN: {admin_dn(s)}\n"
        f"olcRootPW: {ssha512(s.secret('ldap_admin_password'))}\nolcDbMaxSize: 104857600\n"
        "olcDbIndex: objectClass eq\nolcDbIndex: uid eq\nolcDbIndex: member eq\n"
        # Passwords: bind only, never read back; everything else: readable by logged-in entries only.
        "olcAccess: {0}to attrs=userPassword by anonymous auth by * none\n"
        "olcAccess: {1}to * by users read by * none\n",
        "dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
        "objectClass: olcMemberOf\nolcOverlay: {0}memberof\nolcMemberOfRefInt: TRUE\n"
        "olcMemberOfGroupOC: groupOfNames\nolcMemberOfMemberAD: member\nolcMemberOfMemberOfAD: memberOf\n",
    ]
    return "\n".join(p if p.endswith("\n") else p + "\n" for p in parts)


def seed_ldif(s: Settings, access: Access) -> tuple[str, str]:
    """The directory's content: the tree and one entry per demo user (loaded offline with slapadd), and one
    group per role and centre (added through the running slapd, so that the memberof overlay sees them)."""
    base = s.ldap_base_dn
    rdn = base.split(",")[0].split("=", 1)[1]
    entries = [_entry(base, [("objectClass", "top"), ("objectClass", "dcObject"), ("objectClass", "organization"),
                             ("dc", rdn), ("o", "smartrehab 戒毒管理局（演示目录）")])]
    for ou, what in (("people", "people"), ("services", "service accounts"), ("groups", "role groups")):
        entries.append(_entry(f"ou={ou},{base}", [("objectClass", "organizationalUnit"), ("ou", ou),
                                                  ("description", what)]))
    members: dict[str, list[str]] = {}
    for u in access.demo_users:
        dn = user_dn(s, access, u.uid)
        members.setdefault(u.group_cn, []).append(dn)
        attrs = [("objectClass", "inetOrgPerson"), ("uid", u.uid), ("cn", u.cn), ("sn", u.cn),
                 ("displayName", u.cn), ("mail", f"{u.uid}@smartrehab.invalid"),
                 ("userPassword", ssha512(user_password(s, u.uid)))]
        if u.centre:
            attrs.append(("departmentNumber", u.centre))
        entries.append(_entry(dn, attrs))
    groups = []
    for g in access.groups():
        # groupOfNames needs a member: an empty group holds the admin entry's DN (not a person, cannot log in
        # through any tool) until someone joins it.
        attrs = [("objectClass", "groupOfNames"), ("cn", g.cn), ("description", g.superset_name)]
        attrs += [("member", dn) for dn in members.get(g.cn, [admin_dn(s)])]
        groups.append(_entry(group_dn(s, g.cn), attrs))
    return "\n".join(entries), "\n".join(groups)


def _as_ldap_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "openldap", "--", *cmd] if os.geteuid() == 0 else cmd


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        shutil.chown(p, "openldap", "openldap")


def _slap_tool(tool: str) -> str:
    for cand in (f"/usr/sbin/{tool}", shutil.which(tool)):
        if cand and Path(cand).exists():
            return cand
    raise services.ServiceError(f"OpenLDAP's {tool} not found: `apt-get install slapd ldap-utils` "
                                "(infra/setup.sh does)")


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise services.ServiceError(f"{what} failed ({' '.join(cmd[:4])} ...):\n{res.stdout[-1500:]}{res.stderr[-1500:]}")


def _fingerprint(s: Settings) -> str:
    """What the directory is built from: the roles file, the centre table, the base DN (not the secrets)."""
    h = hashlib.sha256()
    for p in (s.access_roles_file, s.catalog_dir / "code_tables" / "centre.csv", Path(__file__)):
        h.update(p.read_bytes())
    h.update(s.ldap_base_dn.encode())
    return h.hexdigest()


def build(s: Settings, log=print) -> bool:
    """(Re)make slapd.d and the database when the roles file changed or they are missing. True if rebuilt."""
    conf, data = s.ldap_dir / "slapd.d", s.ldap_dir / "data"
    marker = data / ".seeded"
    want = _fingerprint(s)
    if marker.exists() and marker.read_text().strip() == want and (conf / "cn=config.ldif").exists():
        return False
    log("directory: building the embedded OpenLDAP from infra/access/roles.yaml")
    access = load_access(s.access_roles_file, s.catalog_dir)
    shutil.rmtree(conf, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    conf.mkdir(parents=True)
    data.mkdir(parents=True)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(s.ldap_dir, 0o700)
    tree, groups = seed_ldif(s, access)
    with tempfile.TemporaryDirectory(dir=s.ldap_dir) as tmp:
        cfg, seed = Path(tmp) / "config.ldif", Path(tmp) / "seed.ldif"
        cfg.write_text(config_ldif(s), encoding="utf-8")
        seed.write_text(tree, encoding="utf-8")
        _run([_slap_tool("slapadd"), "-n0", "-F", str(conf), "-l", str(cfg)], "slapadd of the directory config")
        _run([_slap_tool("slapadd"), "-F", str(conf), "-b", s.ldap_base_dn, "-l", str(seed)],
             "slapadd of the directory content")
    (data / ".groups.ldif").write_text(groups, encoding="utf-8")
    _chown_tree(s.ldap_dir)
    return True


def _add_groups(s: Settings) -> None:
    """The groups pending from ``build``, through the running server; then the directory counts as seeded."""
    pending = s.ldap_dir / "data" / ".groups.ldif"
    with tempfile.NamedTemporaryFile("w", dir=s.secrets_dir, delete=True) as pw:
        pw.write(s.secret("ldap_admin_password"))
        pw.flush()
        _run(["ldapadd", "-x", "-H", s.ldap_uri, "-D", admin_dn(s), "-y", pw.name, "-f", str(pending)],
             "adding the role groups to the directory")
    pending.unlink()
    (s.ldap_dir / "data" / ".seeded").write_text(_fingerprint(s) + "\n")


def start(s: Settings, log=print) -> None:
    """The embedded directory on 127.0.0.1:ldap_port (a no-op when running, or when ldap_url is set)."""
    if not s.ldap_embedded:
        return
    rebuilt = build(s, log)
    running = services._running_pid(s, "slapd")
    if running and not rebuilt and services.port_open("127.0.0.1", s.ldap_port):
        return
    stop(s)
    services._check_port_free("127.0.0.1", s.ldap_port, "directory (slapd)", "SMARTREHAB_LDAP_PORT")
    log(f"directory: starting OpenLDAP on 127.0.0.1:{s.ldap_port}")
    # -d: stay in the foreground (the pid file of var/run is ours); log level 0 there, "stats" to its log.
    cmd = _as_ldap_user([_slap_tool("slapd"), "-d", "0", "-s", "0", "-F", str(s.ldap_dir / "slapd.d"),
                         "-h", f"ldap://127.0.0.1:{s.ldap_port}/"])
    pid = services._spawn(s, "slapd", cmd, dict(os.environ), cwd=s.ldap_dir)
    services._wait_port("127.0.0.1", s.ldap_port, 30, "directory (slapd)", pid, s.run_dir / "slapd.log")
    if (s.ldap_dir / "data" / ".groups.ldif").exists():
        _add_groups(s)


def stop(s: Settings) -> bool:
    return services._stop_pid(s, "slapd", timeout=10)


def whoami(s: Settings, dn: str, password: str) -> subprocess.CompletedProcess:
    """``ldapwhoami`` bound as ``dn``: what a tool's login does first (exit 49: invalid credentials)."""
    with tempfile.NamedTemporaryFile("w", dir=s.secrets_dir, delete=True) as pw:
        pw.write(password)
        pw.flush()
        return subprocess.run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", dn, "-y", pw.name],
                              capture_output=True, text=True)


def search(s: Settings, bind_dn: str, password: str, base: str, filt: str, *attrs: str) -> str:
    """``ldapsearch`` bound as ``bind_dn``; LDIF out (non-wrapped)."""
    with tempfile.NamedTemporaryFile("w", dir=s.secrets_dir, delete=True) as pw:
        pw.write(password)
        pw.flush()
        res = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.ldap_uri, "-D", bind_dn,
                              "-y", pw.name, "-b", base, filt, *attrs], capture_output=True, text=True)
    if res.returncode not in (0, 32):  # 32: no such object
        raise services.ServiceError(f"ldapsearch as {bind_dn} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout
