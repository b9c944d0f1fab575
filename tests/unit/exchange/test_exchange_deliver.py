"""Delivery: the outbox, and SFTP against a real OpenSSH server (a receiver that is up, down, refusing, then back)."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import replace

import pytest
from exchange_support import AS_OF_DAY, AS_OF_MONTH, DAY, MONTH, incident_tables, population_tables

from smartrehab.exchange import crypto
from smartrehab.exchange.bag import build_package
from smartrehab.exchange.deliver import DeliveryError, Target, deliver, delivery_log_path, delivery_targets, target_for
from smartrehab.exchange.verify import verify_bag


@pytest.fixture
def police_bag(settings, tmp_path):
    return build_package(settings, "incident_report", MONTH, "police", incident_tables(), tmp_path / "out",
                         as_of=AS_OF_MONTH)


def _log(settings) -> list[dict]:
    return [json.loads(line) for line in delivery_log_path(settings).read_text().splitlines()]


def _sftp_target(server, **kw) -> Target:
    base = Target(receiver="police", transport="sftp", host="127.0.0.1", port=server.port, user=server.user,
                  remote_dir=str(server.remote_dir), known_hosts=server.known_hosts, attempts=3,
                  backoff_seconds=0.05, timeout_seconds=5)
    return replace(base, **kw)


def test_outbox_delivery_is_atomic_idempotent_and_logged(settings, tmp_path):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "out",
                        as_of=AS_OF_DAY)
    target = target_for(settings, "moj")
    assert target.transport == "outbox" and target.outbox == settings.var_dir / "exchange" / "outbox" / "moj"
    r1 = deliver(settings, bag)
    r2 = deliver(settings, bag)
    assert [p.name for p in target.outbox.iterdir()] == [bag.name + ".zip"]  # replaced, not duplicated; no .part
    delivered = target.outbox / (bag.name + ".zip")
    assert verify_bag(delivered, crypto.signing_key(settings, "sm2").public).ok
    receipt = crypto.sm3_hex((bag / "tagmanifest-sm3.txt").read_bytes())
    assert r1.receipt_sm3 == r2.receipt_sm3 == receipt and r1.status == "delivered"
    log = _log(settings)
    assert [e["status"] for e in log] == ["delivered", "delivered"]
    assert log[0]["receipt_sm3"] == receipt and log[0]["package"] == "population_daily" and log[0]["period"] == DAY


def test_an_invalid_package_is_never_delivered(settings, tmp_path):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "out",
                        as_of=AS_OF_DAY)
    (bag / "data/population.csv").write_bytes(b"census_date,centre,zone,population\r\n")
    with pytest.raises(DeliveryError, match=r"failed verification(?s:.*)manifest-sha256.digest"):
        deliver(settings, bag)
    assert not (settings.var_dir / "exchange" / "outbox" / "moj").exists()
    assert _log(settings)[-1]["status"] == "refused"


def test_a_package_for_another_receiver_is_refused(settings, police_bag):
    with pytest.raises(DeliveryError, match="addressed to receiver 'police', not to 'court'"):
        deliver(settings, police_bag, target_for(settings, "court"))


def test_sftp_delivery_renames_into_place_and_replaces_on_rerun(settings, police_bag, sshd):
    target = _sftp_target(sshd)
    receipt = deliver(settings, police_bag, target)
    name = police_bag.name + ".zip"
    assert sshd.files() == [name]
    remote = sshd.remote_dir / name
    assert remote.read_bytes() == police_bag.with_name(name).read_bytes()
    assert verify_bag(remote, crypto.signing_key(settings, "sm2").public).ok
    assert receipt.attempts == 1 and receipt.destination.startswith(f"sftp://{sshd.user}@127.0.0.1:{sshd.port}/")
    deliver(settings, police_bag, target)
    assert sshd.files() == [name]  # posix-rename replaced the earlier delivery
    assert [e["status"] for e in _log(settings)] == ["delivered", "delivered"]
    assert "Accepted publickey" in sshd.log.read_text()


def test_receiver_down_retries_then_reports_and_the_next_run_recovers(settings, police_bag, sshd_factory):
    target = _sftp_target(sshd_factory)
    waits = []
    with pytest.raises(DeliveryError) as err:
        deliver(settings, police_bag, target, sleep=waits.append)
    msg = str(err.value)
    assert "failed after 3 attempts" in msg and "the next run delivers it" in msg
    assert "Connection" in msg or "connect" in msg
    assert waits == [0.05, 0.1]  # exponential back-off between the three attempts
    assert sshd_factory.files() == []  # nothing was written
    failed = _log(settings)[-1]
    assert failed["status"] == "failed" and failed["attempts"] == 3 and len(failed["attempt_errors"]) == 3
    sshd_factory.start()
    receipt = deliver(settings, police_bag, target)
    assert receipt.status == "delivered"
    assert sshd_factory.files() == [police_bag.name + ".zip"]
    assert [e["status"] for e in _log(settings)] == ["failed", "delivered"]


def test_receiver_refusing_the_rename_leaves_nothing_half_written(settings, police_bag, sshd):
    """The final name is taken by a folder with content on the server: the rename fails on every attempt, the
    partial upload is removed each time, and a clear error is raised."""
    blocker = sshd.remote_dir / (police_bag.name + ".zip")
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    with pytest.raises(DeliveryError, match="failed after 2 attempts"):
        deliver(settings, police_bag, _sftp_target(sshd, attempts=2), sleep=lambda _s: None)
    assert sshd.files() == [police_bag.name + ".zip"] and blocker.is_dir()  # no .part left behind
    assert not [f for f in os.listdir(sshd.remote_dir) if f.endswith(".part")]
    (blocker / "keep").unlink()
    blocker.rmdir()
    deliver(settings, police_bag, _sftp_target(sshd))
    assert zipfile.is_zipfile(sshd.remote_dir / (police_bag.name + ".zip"))


def test_unknown_host_key_and_unauthorised_client_key_are_not_retried(settings, police_bag, sshd, tmp_path):
    other_hosts = tmp_path / "other_known_hosts"
    other_hosts.write_text("")
    waits = []
    with pytest.raises(DeliveryError, match="known_hosts"):
        deliver(settings, police_bag, _sftp_target(sshd, known_hosts=other_hosts), sleep=waits.append)
    assert waits == [] and _log(settings)[-1]["attempts"] == 1
    (sshd.root / "authorized_keys").write_text("")
    with pytest.raises(DeliveryError, match="refused our key.*authorized_keys: ssh-ed25519 "):
        deliver(settings, police_bag, _sftp_target(sshd), sleep=waits.append)
    assert waits == [] and sshd.files() == []


def test_delivery_targets_come_from_var_exchange_delivery_yaml(settings, tmp_path):
    cfg = settings.var_dir / "exchange" / "delivery.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("receivers:\n  police: {transport: sftp, host: sftp.police.example, port: 2222, user: bureau,\n"
                   "           remote_dir: /incoming, known_hosts: /etc/smartrehab/known_hosts, attempts: 6}\n")
    t = target_for(settings, "police")
    assert (t.transport, t.host, t.port, t.attempts, str(t.known_hosts)) == \
        ("sftp", "sftp.police.example", 2222, 6, "/etc/smartrehab/known_hosts")
    assert target_for(settings, "moj").transport == "outbox"
    cfg.write_text("receivers:\n  police: {transport: sftp, host: h}\n")
    with pytest.raises(DeliveryError, match="needs user, remote_dir, known_hosts"):
        delivery_targets(settings)
