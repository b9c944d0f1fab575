"""The audit trail (smartrehab/audit.py): a real Delta table (delta-rs, no JVM) in a var dir of each test's own.

Tampering is done the way someone with write access to the lake could: turn append-only off and delete or
update through Delta itself, or cut the newest records off; ``verify`` and ``smartrehab audit verify`` must name
the record.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from deltalake import DeltaTable

from smartrehab import audit, cli
from smartrehab.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path / "var")})


def _log(s, n: int = 5) -> None:
    events = [audit.Event("login", actor=f"user{i}", tool="superset", client_addr="127.0.0.1",
                          outcome="failure" if i % 2 else "success", detail={"reason": "测试"}) for i in range(1, n)]
    for e in events:
        audit.record(e, settings=s)
    audit.record(audit.Event("sql", actor="fenxi.01", tool="sql_endpoint", statement="select 1 from gold.x",
                             tables_read=["gold.x"], rows=1), settings=s)


def _verify_cli(s, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(cli, "get_settings", lambda: s)
    code = cli.main(["audit", "verify"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_intact_log_verifies_and_chains_each_record_to_the_one_before(settings, monkeypatch, capsys):
    _log(settings)
    rows = sorted(DeltaTable(audit.table_path(settings)).to_pyarrow_table().to_pylist(), key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert rows[4]["statement"] == "select 1 from gold.x" and rows[4]["rows"] == 1
    assert audit.verify(settings).ok
    code, out = _verify_cli(settings, monkeypatch, capsys)
    assert code == 0 and "intact, 5 records" in out


def test_table_is_append_only_with_six_months_retention(settings):
    _log(settings, 2)
    dt = DeltaTable(audit.table_path(settings))
    config = dt.metadata().configuration
    assert config["delta.appendOnly"] == "true"
    assert config["delta.logRetentionDuration"] == "interval 400 days"
    with pytest.raises(Exception, match="append-only"):
        dt.delete("seq = 1")
    short = load_settings({"SMARTREHAB_VAR_DIR": str(settings.var_dir), "SMARTREHAB_AUDIT_RETENTION_DAYS": "90"})
    with pytest.raises(audit.AuditError, match="at least 183 days"):
        audit.record(audit.Event("login", actor="x", tool="superset"), settings=short)


def _unlock(s) -> DeltaTable:
    dt = DeltaTable(audit.table_path(s))
    dt.alter.set_table_properties({"delta.appendOnly": "false"})
    return DeltaTable(audit.table_path(s))


def test_deleted_record_is_named(settings, monkeypatch, capsys):
    _log(settings)
    _unlock(settings).delete("seq = 3")
    verdict = audit.verify(settings)
    assert not verdict.ok and verdict.records == 4
    assert any("seq 3 missing (deleted)" in p for p in verdict.problems), verdict.problems
    code, out = _verify_cli(settings, monkeypatch, capsys)
    assert code == 1 and "seq 3 missing" in out


def test_altered_record_is_named(settings, monkeypatch, capsys):
    _log(settings)
    _unlock(settings).update(predicate="seq = 2", updates={"outcome": "'failure'"})
    verdict = audit.verify(settings)
    assert not verdict.ok
    assert verdict.problems == [f"record seq 2 ({verdict_time(settings, 2)}, user2, login) altered: its content "
                                "does not match its hash"]
    code, out = _verify_cli(settings, monkeypatch, capsys)
    assert code == 1 and "seq 2" in out and "altered" in out


def verdict_time(s, seq: int) -> str:
    rows = DeltaTable(audit.table_path(s)).to_pyarrow_table().to_pylist()
    return next(r["event_time"] for r in rows if r["seq"] == seq).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_rechained_record_without_the_key_is_caught(settings):
    """An altered record whose hash is recomputed with plain SM3 (the key is not in the lake) still fails."""
    import hashlib

    _log(settings)
    dt = _unlock(settings)
    row = next(r for r in dt.to_pyarrow_table().to_pylist() if r["seq"] == 4)
    row["actor"] = "someone_else"
    forged = hashlib.new("sm3", audit.canonical(row)).hexdigest()
    dt.update(predicate="seq = 4", updates={"actor": "'someone_else'", "hash": f"'{forged}'"})
    problems = audit.verify(settings).problems
    assert any(p.startswith("record seq 4") and "altered" in p for p in problems), problems


def test_newest_records_cut_off_are_detected_by_the_anchor(settings):
    _log(settings)
    _unlock(settings).delete("seq >= 4")
    problems = audit.verify(settings).problems
    assert problems == ["records after seq 3 missing (deleted): the anchor says the log reached seq 5"]


def test_appends_from_several_processes_keep_one_chain(settings):
    code = ("import sys; from smartrehab import audit; from smartrehab.settings import load_settings; "
            f"s = load_settings({{'SMARTREHAB_VAR_DIR': {str(settings.var_dir)!r}}}); "
            "[audit.record(audit.Event('dag_trigger', actor=sys.argv[1], tool='airflow', object='gold_build'), "
            "settings=s) for _ in range(6)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, who]) for who in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    verdict = audit.verify(settings)
    assert verdict.ok and verdict.records == 18, verdict.problems


def test_bad_event_is_refused_with_what_to_use(settings):
    with pytest.raises(audit.AuditError, match="event_type 'view'"):
        audit.record(audit.Event("view", actor="x", tool="superset"), settings=settings)
    with pytest.raises(audit.AuditError, match="outcome"):
        audit.record(audit.Event("login", actor="x", tool="superset", outcome="ok"), settings=settings)
    audit.record(audit.Event("login", actor="x", tool="superset", event_time=datetime(2026, 1, 1, tzinfo=UTC)),
                 settings=settings)
    assert audit.verify(settings).records == 1
