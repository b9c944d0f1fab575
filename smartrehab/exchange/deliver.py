"""Deliver exchange packages: to an outbox folder (default) or over SFTP (production), with a delivery log.

    receipt = deliver(settings, bag_dir, target)        # target from delivery_targets(settings)[receiver]

Every delivery sends the package's deterministic zip (bag.write_zip) under its final name only once it
is complete: it is written to ``.<name>.part`` and renamed into place (on SFTP with the
posix-rename@openssh.com extension, which replaces an earlier delivery of the same package, so a
re-run replaces and never duplicates). Before sending, the package is verified with the sender's own
public key; an invalid package is never delivered. Connection failures are retried with exponential
back-off; an authentication or host-key failure is not (retrying cannot fix it). Each attempt's
outcome is appended to the delivery log (JSON lines, ``var/exchange/delivery-log.jsonl``) with the
receipt: the SM3 of the package's tag manifest, which the receiver can recompute from what it got.

Delivery targets are deployment configuration, not spec: ``var/exchange/delivery.yaml`` (see
docs/exchange/delivery.example.yaml) names, per receiver, ``transport: sftp`` with host, port, user,
remote_dir and known_hosts; receivers not named there get the outbox ``var/exchange/outbox/<receiver>``.
The SFTP client key is an Ed25519 key from the secret source (``exchange_sftp_client_key``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from smartrehab.exchange import crypto
from smartrehab.exchange.bag import ExchangeError, write_zip
from smartrehab.exchange.verify import read_bag, verify_bag

CLIENT_KEY_SECRET = "exchange_sftp_client_key"


class DeliveryError(ExchangeError):
    pass


@dataclass(frozen=True)
class Target:
    receiver: str
    transport: str = "outbox"          # outbox | sftp
    outbox: Path | None = None
    host: str = ""
    port: int = 22
    user: str = ""
    remote_dir: str = "."
    known_hosts: Path | None = None
    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 15.0

    @property
    def destination(self) -> str:
        if self.transport == "sftp":
            return f"sftp://{self.user}@{self.host}:{self.port}{'' if self.remote_dir.startswith('/') else '/'}" \
                   f"{self.remote_dir}"
        return str(self.outbox)


@dataclass
class Receipt:
    receiver: str
    package: str
    period: str
    status: str                 # delivered | failed | refused
    transport: str
    destination: str
    file: str
    bytes: int
    sha256: str
    receipt_sm3: str            # SM3 of tagmanifest-sm3.txt
    attempts: int
    at: str = ""
    error: str = ""
    attempt_errors: list[str] = field(default_factory=list)


def exchange_dir(settings) -> Path:
    return settings.var_dir / "exchange"


def delivery_log_path(settings) -> Path:
    return exchange_dir(settings) / "delivery-log.jsonl"


def delivery_targets(settings, path: Path | None = None) -> dict[str, Target]:
    """The SFTP targets of ``var/exchange/delivery.yaml`` (or ``path``); missing receivers use the outbox."""
    path = path or exchange_dir(settings) / "delivery.yaml"
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {}
    for rid, t in (raw.get("receivers") or {}).items():
        kw = dict(t)
        transport = kw.pop("transport", "outbox")
        if transport not in ("outbox", "sftp"):
            raise DeliveryError(f"{path}: receivers.{rid}.transport must be outbox or sftp")
        if transport == "sftp":
            missing = [k for k in ("host", "user", "remote_dir", "known_hosts") if not kw.get(k)]
            if missing:
                raise DeliveryError(f"{path}: receivers.{rid} (sftp) needs {', '.join(missing)}")
            kw["known_hosts"] = Path(kw["known_hosts"])
        if "outbox" in kw:
            kw["outbox"] = Path(kw["outbox"])
        try:
            out[rid] = Target(receiver=rid, transport=transport, **kw)
        except TypeError as exc:
            raise DeliveryError(f"{path}: receivers.{rid}: {exc}") from None
    return out


def target_for(settings, receiver: str, targets: dict[str, Target] | None = None) -> Target:
    targets = delivery_targets(settings) if targets is None else targets
    t = targets.get(receiver) or Target(receiver=receiver)
    if t.transport == "outbox" and t.outbox is None:
        t = replace(t, outbox=exchange_dir(settings) / "outbox" / receiver)
    return t


# ---- the SFTP client key ---------------------------------------------------------------------------
def _client_private_key(settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = settings.secret(CLIENT_KEY_SECRET).strip()
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    except ValueError:
        raise DeliveryError(f"secret {CLIENT_KEY_SECRET} must be 64 hex digits (an Ed25519 seed)") from None


def client_public_key(settings) -> str:
    """The ``ssh-ed25519 AAAA... smartrehab-exchange`` line a receiver puts in its authorized_keys."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = _client_private_key(settings).public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    return pub.decode() + " smartrehab-exchange"


def _paramiko_key(settings):
    import paramiko
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    pem = _client_private_key(settings).private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem))


# ---- delivery -----------------------------------------------------------------------------------------
def _package_facts(zip_path: Path) -> dict:
    _, files = read_bag(zip_path)
    info = {}
    for line in files["bag-info.txt"].decode("utf-8").splitlines():
        k, _, v = line.partition(":")
        info.setdefault(k.strip(), v.strip())
    data = zip_path.read_bytes()
    return {"package": info.get("Exchange-Package", ""), "period": info.get("Exchange-Period", ""),
            "receiver": info.get("Exchange-Receiver", ""), "bytes": len(data),
            "algorithm": "ed25519" if info.get("Signature-Algorithm") == "Ed25519" else "sm2",
            "sha256": crypto.file_digests(data)["sha256"], "receipt_sm3": crypto.sm3_hex(files["tagmanifest-sm3.txt"])}


def _log(settings, receipt: Receipt, log_path: Path | None) -> None:
    path = log_path or delivery_log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(receipt), ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _to_outbox(zip_path: Path, target: Target) -> None:
    target.outbox.mkdir(parents=True, exist_ok=True)
    part = target.outbox / f".{zip_path.name}.part"
    try:
        shutil.copyfile(zip_path, part)
        with part.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, target.outbox / zip_path.name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


class _Fatal(Exception):
    """A failure that retrying cannot fix (wrong key, unknown or changed host key)."""


def _sftp_once(settings, zip_path: Path, target: Target, expected: int) -> None:
    import paramiko

    client = paramiko.SSHClient()
    if target.known_hosts is None or not target.known_hosts.exists():
        raise _Fatal(f"known_hosts file {target.known_hosts} is missing: get the receiver's host key and put it there")
    client.load_host_keys(str(target.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        try:
            client.connect(target.host, port=target.port, username=target.user, pkey=_paramiko_key(settings),
                           timeout=target.timeout_seconds, banner_timeout=target.timeout_seconds,
                           auth_timeout=target.timeout_seconds, allow_agent=False, look_for_keys=False)
        except paramiko.AuthenticationException as exc:
            raise _Fatal(f"the receiver refused our key ({exc}); it must list this client key in authorized_keys: "
                         f"{client_public_key(settings)}") from exc
        except paramiko.BadHostKeyException as exc:
            raise _Fatal(f"the receiver's host key changed ({exc}): check with the receiver before delivering") from exc
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc):
                raise _Fatal(f"{exc}: add the receiver's host key to {target.known_hosts}") from exc
            raise
        sftp = client.open_sftp()
        final = f"{target.remote_dir.rstrip('/')}/{zip_path.name}"
        part = f"{target.remote_dir.rstrip('/')}/.{zip_path.name}.part"
        try:
            sftp.put(str(zip_path), part, confirm=True)
            size = sftp.stat(part).st_size
            if size != expected:
                raise OSError(f"the uploaded file has {size} bytes, the package {expected}")
            sftp.posix_rename(part, final)
        except BaseException:
            try:
                sftp.remove(part)
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the connection is gone; the next run overwrites the same .part name
            raise
        finally:
            sftp.close()
    finally:
        client.close()


def deliver(settings, bag: Path | str, target: Target | None = None, *, public_key: crypto.PublicKey | None = None,
            log_path: Path | None = None, sleep=time.sleep) -> Receipt:
    """Deliver one package (bag folder or its zip) to ``target`` (default: the receiver's configured target)."""
    bag = Path(bag)
    zip_path = write_zip(bag) if bag.is_dir() else bag
    facts = _package_facts(zip_path)
    target = target or target_for(settings, facts["receiver"])
    receipt = Receipt(receiver=target.receiver, package=facts["package"], period=facts["period"], status="failed",
                      transport=target.transport, destination=target.destination, file=zip_path.name,
                      bytes=facts["bytes"], sha256=facts["sha256"], receipt_sm3=facts["receipt_sm3"], attempts=0)

    def finish(status: str, error: str = "") -> Receipt:
        receipt.status, receipt.error = status, error
        receipt.at = datetime.now(UTC).isoformat(timespec="seconds")
        _log(settings, receipt, log_path)
        if status != "delivered":
            raise DeliveryError(error)
        return receipt

    if facts["receiver"] != target.receiver:
        return finish("refused", f"{zip_path.name} is addressed to receiver '{facts['receiver']}', not to "
                                 f"'{target.receiver}': not delivered")
    key = public_key or crypto.signing_key(settings, facts["algorithm"]).public
    report = verify_bag(zip_path, key)
    if not report.ok:
        return finish("refused", f"{zip_path.name} failed verification and was not delivered:\n" + report.text())
    if target.transport == "outbox":
        receipt.attempts = 1
        try:
            _to_outbox(zip_path, target)
        except OSError as exc:
            return finish("failed", f"cannot write to the outbox {target.outbox}: {exc}")
        return finish("delivered")
    for attempt in range(1, target.attempts + 1):
        receipt.attempts = attempt
        try:
            _sftp_once(settings, zip_path, target, facts["bytes"])
            return finish("delivered")
        except _Fatal as exc:
            return finish("failed", f"delivery of {zip_path.name} to {target.destination} failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - socket, SSH and SFTP errors: retried, then reported
            receipt.attempt_errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            if attempt < target.attempts:
                sleep(min(target.max_backoff_seconds, target.backoff_seconds * 2 ** (attempt - 1)))
    return finish("failed", f"delivery of {zip_path.name} to receiver '{target.receiver}' at {target.destination} "
                            f"failed after {target.attempts} attempts ({receipt.attempt_errors[-1]}). No partial upload was "
                            f"left on the server (an earlier delivery stays as it was); the package stays in {zip_path.parent} and "
                            f"the next run delivers it.")
