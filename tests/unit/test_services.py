"""Bad starts: a port already taken, a stale pid file from a half-finished run, a missing Java."""

from __future__ import annotations

import socket

import pytest

from smartrehab import services
from smartrehab.settings import load_settings


def test_port_taken_names_the_port_and_the_setting():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        with pytest.raises(services.ServiceError) as exc:
            services._check_port_free("127.0.0.1", port, "SQL endpoint", "SMARTREHAB_THRIFT_PORT")
    msg = str(exc.value)
    assert f"127.0.0.1:{port} is already taken" in msg and "SMARTREHAB_THRIFT_PORT" in msg
    services._check_port_free("127.0.0.1", port, "SQL endpoint", "SMARTREHAB_THRIFT_PORT")  # free again


def test_stale_pid_file_is_cleared(tmp_path):
    s = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path)})
    s.run_dir.mkdir(parents=True)
    (s.run_dir / "thrift.pid").write_text("999999")   # no such process
    assert services._running_pid(s, "thrift") is None
    assert not (s.run_dir / "thrift.pid").exists()
    (s.run_dir / "mlflow.pid").write_text("garbage")
    assert services._running_pid(s, "mlflow") is None


def test_missing_java_says_what_to_install(monkeypatch):
    monkeypatch.setattr(services.shutil, "which", lambda _name: None)
    with pytest.raises(services.ServiceError, match="apt-get install openjdk-17"):
        services.check_java()


def test_status_reports_each_service_down_on_unused_ports(tmp_path):
    s = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path), "SMARTREHAB_PG_PORT": "1", "SMARTREHAB_THRIFT_PORT": "2",
                       "SMARTREHAB_MLFLOW_PORT": "3", "SMARTREHAB_AIRFLOW_PORT": "4", "SMARTREHAB_SUPERSET_PORT": "5",
                       "SMARTREHAB_LDAP_PORT": "6"})
    st = services.status(s)
    assert set(st) == set(services.SERVICES) and all(v.startswith("down") for v in st.values())
