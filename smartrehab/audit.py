"""The audit trail: one append-only Delta table ``audit.access_log``, each record chained to the one before.

Every tool appends through this module (no JVM: delta-rs), so the chain has one implementation::

    from smartrehab import audit
    audit.record(audit.Event("login", actor="suo.bj01", tool="superset", outcome="failure",
                             client_addr="10.1.2.3", detail={"reason": "invalid credentials"}))
    audit.record(audit.Event("export_delivery", actor="svc.pipeline", tool="exchange", object="population_daily",
                             outcome="success", rows=1234, detail={"receiver": "ministry", "package": "..."}))

Each record carries ``seq`` (1, 2, ...), ``prev_hash`` (the previous record's ``hash``; 64 zeros for the first) and
``hash`` = HMAC-SM3 (GB/T 32905) under the secret ``audit_chain_key`` of ``prev_hash`` and the record's canonical
JSON. Appends are serialised by a file lock; the newest (seq, hash) is also kept as an anchor outside the table
(``var/audit/access_log.head``), so that cutting records off the end is detected too. ``verify`` (``smartrehab
audit verify``) recomputes the chain and names the first record that was deleted, altered or inserted.

The table is created with ``delta.appendOnly=true`` (Delta refuses DELETE, UPDATE and MERGE on it) and log and file
retention of ``settings.audit_retention_days`` (at least 183 days, 网络安全法 Art. 21): records are never removed
by the platform. The table lives at ``<warehouse>/audit.db/access_log``; ``register_sql`` names it in the
metastore so the SQL endpoint and Spark read it as ``audit.access_log``.
"""

from __future__ import annotations

import fcntl
import hmac
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smartrehab.settings import Settings, get_settings, write_private

TABLE = "audit.access_log"
GENESIS = "0" * 64
MIN_RETENTION_DAYS = 183
EVENT_TYPES = ("login", "logout", "sql", "dashboard_view", "chart_query", "dag_trigger", "export_delivery",
               "access_change", "event")
OUTCOMES = ("success", "failure", "denied")
# The columns that the hash covers, in this order (all but `hash` itself).
FIELDS = ("seq", "event_time", "event_type", "tool", "actor", "client_addr", "action", "object", "statement",
          "tables_read", "rows", "outcome", "detail", "prev_hash")


class AuditError(RuntimeError):
    pass


@dataclass
class Event:
    """One thing that happened: who (``actor``, the directory uid), through what (``tool``), what and how it ended."""

    event_type: str
    actor: str
    tool: str
    outcome: str = "success"
    action: str = ""
    object: str = ""
    statement: str = ""
    tables_read: tuple[str, ...] | list[str] = ()
    rows: int | None = None
    client_addr: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    event_time: datetime | None = None

    def check(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise AuditError(f"audit: event_type '{self.event_type}' is not one of {EVENT_TYPES}")
        if self.outcome not in OUTCOMES:
            raise AuditError(f"audit: outcome '{self.outcome}' is not one of {OUTCOMES}")
        if not self.actor:
            raise AuditError("audit: an event needs an actor (the user name, or 'anonymous')")


def table_path(s: Settings) -> str:
    return f"{s.warehouse}/audit.db/access_log"


def _retention(s: Settings) -> int:
    if s.audit_retention_days < MIN_RETENTION_DAYS:
        raise AuditError(f"SMARTREHAB_AUDIT_RETENTION_DAYS={s.audit_retention_days}: audit records must be kept at "
                         f"least {MIN_RETENTION_DAYS} days (six months, 网络安全法 Art. 21)")
    return s.audit_retention_days


def table_configuration(s: Settings) -> dict[str, str]:
    days = _retention(s)
    return {"delta.appendOnly": "true", "delta.logRetentionDuration": f"interval {days} days",
            "delta.deletedFileRetentionDuration": f"interval {days} days"}


def _time_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: its fields in FIELDS order as compact JSON."""
    values = []
    for name in FIELDS:
        v = row.get(name)
        if isinstance(v, datetime):
            v = _time_text(v)
        values.append(v)
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def chain_hash(key: bytes, row: dict[str, Any]) -> str:
    return hmac.new(key, canonical(row), "sm3").hexdigest()


def _key(s: Settings) -> bytes:
    return s.secret("audit_chain_key").encode("utf-8")


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("seq", pa.int64()), ("event_time", pa.timestamp("us", tz="UTC")), ("event_type", pa.string()),
        ("tool", pa.string()), ("actor", pa.string()), ("client_addr", pa.string()), ("action", pa.string()),
        ("object", pa.string()), ("statement", pa.string()), ("tables_read", pa.string()), ("rows", pa.int64()),
        ("outcome", pa.string()), ("detail", pa.string()), ("prev_hash", pa.string()), ("hash", pa.string()),
    ])


@contextmanager
def _locked(s: Settings):
    s.audit_dir.mkdir(parents=True, exist_ok=True)
    with open(s.audit_dir / "access_log.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _head_file(s: Settings) -> Path:
    return s.audit_dir / "access_log.head"


def read_head(s: Settings) -> dict | None:
    p = _head_file(s)
    return json.loads(p.read_text()) if p.exists() else None


def _write_head(s: Settings, head: dict) -> None:
    write_private(_head_file(s), json.dumps(head))


def _read_rows(s: Settings, where: str = "") -> list[dict]:
    from deltalake import DeltaTable, QueryBuilder

    dt = DeltaTable(table_path(s))
    # DataFusion also reads deletion vectors (the pyarrow scanner refuses them), should a writer ever add some.
    reader = QueryBuilder().register("access_log", dt).execute(f"select * from access_log {where} order by seq")
    import pyarrow as pa

    return pa.table(reader.read_all()).to_pylist()


def _last(s: Settings) -> tuple[int, str]:
    """(seq, hash) of the newest record: from the anchor when it matches the table's version, else the table."""
    from deltalake import DeltaTable

    path = table_path(s)
    if not _exists(s):
        return 0, GENESIS
    version = DeltaTable(path).version()
    head = read_head(s)
    if head and head.get("version") == version:
        return head["seq"], head["hash"]
    rows = _read_rows(s, "where seq = (select max(seq) from access_log)")
    return (rows[-1]["seq"], rows[-1]["hash"]) if rows else (0, GENESIS)


def _exists(s: Settings) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(table_path(s))


def record(*events: Event, settings: Settings | None = None) -> int:
    """Append ``events`` (in order) to the chain in one Delta commit; returns the seq of the last one.

    Raises when the record cannot be written: a caller that must not act unaudited lets that propagate.
    """
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    if not events:
        raise AuditError("audit.record: no event given")
    s = settings or get_settings()
    config = table_configuration(s)
    key = _key(s)
    for e in events:
        e.check()
    with _locked(s):
        seq, prev = _last(s)
        rows = []
        for e in events:
            seq += 1
            row = {"seq": seq, "event_time": (e.event_time or datetime.now(UTC)).astimezone(UTC),
                   "event_type": e.event_type, "tool": e.tool, "actor": e.actor, "client_addr": e.client_addr or "",
                   "action": e.action or "", "object": e.object or "", "statement": e.statement or "",
                   "tables_read": ",".join(sorted(set(e.tables_read))), "rows": e.rows, "outcome": e.outcome,
                   "detail": json.dumps(e.detail or {}, ensure_ascii=False, sort_keys=True, default=str),
                   "prev_hash": prev}
            row["hash"] = prev = chain_hash(key, row)
            rows.append(row)
        write_deltalake(table_path(s), pa.Table.from_pylist(rows, schema=_schema()), mode="append",
                        configuration=config)
        _write_head(s, {"seq": seq, "hash": prev, "version": DeltaTable(table_path(s)).version()})
    return seq


def ingest_spool(s: Settings | None = None) -> int:
    """Chain the SQL endpoint's spooled statements (``smartrehab.access.endpoint``: one JSON line per statement,
    written by the JVM, which cannot call this module) into the table; returns how many. The spool is renamed
    first, so the endpoint goes on writing a new one; a line that cannot be read is recorded as such, not
    dropped. Called by ``smartrehab audit ingest`` (and before ``smartrehab audit verify``) and by the
    ``audit_ingest`` DAG every five minutes."""
    from smartrehab.access import endpoint

    s = s or get_settings()
    spool = endpoint.spool_path(s)
    total = 0
    with _locked(s):
        pending = sorted(spool.parent.glob(spool.name + ".*.ingesting"))
        if spool.exists():
            taken = spool.with_name(f"{spool.name}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}.ingesting")
            spool.rename(taken)
            pending.append(taken)
    for path in pending:
        with open(path, "rb") as fh:
            fcntl.lockf(fh, fcntl.LOCK_SH)  # a statement being written when the file was renamed ends first
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
        events = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                events.append(Event(
                    "sql", actor=r["actor"] or "anonymous", tool="sql_endpoint", outcome=r["outcome"],
                    statement=r["statement"], tables_read=[t for t in r["tables_read"].split(",") if t],
                    event_time=datetime.fromisoformat(r["event_time"].replace("Z", "+00:00")),
                    detail={"role": r["role"], **({"reason": r["reason"]} if r["reason"] else {})}))
            except (ValueError, KeyError) as exc:
                events.append(Event("event", actor="sql_endpoint", tool="sql_endpoint", outcome="failure",
                                    action="spool_unreadable",
                                    detail={"file": path.name, "line": i, "error": str(exc), "text": line[:2000]}))
        if events:
            record(*events, settings=s)
        total += len(events)
        path.unlink()
    return total


@dataclass
class Verdict:
    ok: bool
    records: int
    problems: list[str]


def verify(s: Settings | None = None) -> Verdict:
    """Recompute the chain; every problem names the record (seq, time, actor) where the chain breaks."""
    s = s or get_settings()
    if not _exists(s):
        head = read_head(s)
        if head:
            return Verdict(False, 0, [f"{table_path(s)} is gone, but the anchor says the log reached seq {head['seq']}"])
        return Verdict(True, 0, [])
    key = _key(s)
    rows = _read_rows(s)
    problems: list[str] = []
    prev_seq, prev_hash = 0, GENESIS
    for row in rows:
        name = f"seq {row['seq']} ({_time_text(row['event_time'])}, {row['actor']}, {row['event_type']})"
        if row["seq"] == prev_seq:
            problems.append(f"record {name}: a second record with this seq (inserted)")
        elif row["seq"] != prev_seq + 1:
            missing = ", ".join(str(n) for n in range(prev_seq + 1, min(row["seq"], prev_seq + 6)))
            problems.append(f"record seq {missing}{' ...' if row['seq'] - prev_seq > 6 else ''} missing (deleted): "
                            f"seq {prev_seq} is followed by {name}")
        if row["hash"] != chain_hash(key, row):
            problems.append(f"record {name} altered: its content does not match its hash")
        elif row["prev_hash"] != prev_hash:
            problems.append(f"record {name}: prev_hash is not the hash of the record before it "
                            "(a record before it was deleted, altered or re-chained)")
        prev_seq, prev_hash = row["seq"], row["hash"]
    head = read_head(s)
    if head and head["seq"] > prev_seq:
        problems.append(f"records after seq {prev_seq} missing (deleted): the anchor says the log reached "
                        f"seq {head['seq']}")
    elif head and head["seq"] == prev_seq and head["hash"] != prev_hash:
        problems.append(f"record seq {prev_seq}: its hash is not the one anchored when it was written")
    return Verdict(not problems, len(rows), problems)


def register_sql(execute, s: Settings | None = None) -> None:
    """Name the table in the metastore through ``execute(sql)`` (a Spark session's ``sql`` or a SQL-endpoint
    cursor's ``execute``): ``audit.access_log`` for Spark, dbt, the SQL endpoint and Superset. The table must
    exist (``record`` makes it with the first event)."""
    s = s or get_settings()
    execute("create database if not exists audit")
    execute(f"create table if not exists {TABLE} using delta location '{table_path(s)}'")


def register_on_endpoint(s: Settings) -> None:
    """Make ``audit.access_log`` queryable on the SQL endpoint (creating the table with a first record if needed:
    who started the platform's services)."""
    import getpass
    from contextlib import closing

    from smartrehab.access import endpoint

    if not _exists(s):
        record(Event("event", actor=getpass.getuser(), tool="platform", action="serve",
                     detail={"what": "services started"}), settings=s)
    with closing(endpoint.connect(s)) as conn, closing(conn.cursor()) as cur:
        register_sql(cur.execute, s)
