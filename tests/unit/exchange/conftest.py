"""Fixtures of the exchange tests: settings with a var dir (and secrets) of their own, and a real OpenSSH server.

The server is Debian's /usr/sbin/sshd (package openssh-server, installed by infra/setup.sh), started on
127.0.0.1 on a free port with its own config, host key, authorised client key and internal-sftp, as the
current user (root too: then StrictModes no and a privilege-separation directory), and stopped at the end.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from exchange_support import make_settings

SSHD = Path("/usr/sbin/sshd")


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SSHServer:
    root: Path
    port: int
    user: str
    known_hosts: Path
    remote_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        check = subprocess.run([str(SSHD), "-t", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, f"sshd -t: {check.stderr}"
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.config), "-E", str(self.log)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not answer on 127.0.0.1:{self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def files(self) -> list[str]:
        """Every entry of the remote folder, hidden ones included."""
        return sorted(os.listdir(self.remote_dir))


@pytest.fixture
def sshd_factory(tmp_path, settings):
    """An SSH server, configured but not started (``.start()``), authorising the settings' client key."""
    if not SSHD.exists():
        pytest.fail("/usr/sbin/sshd is missing: run infra/setup.sh (installs openssh-server)")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    from smartrehab.exchange.deliver import client_public_key

    root = tmp_path / "sshd"
    root.mkdir()
    host_key = Ed25519PrivateKey.generate()
    key_file = root / "host_ed25519"
    key_file.write_bytes(host_key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    key_file.chmod(0o600)
    host_pub = host_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (root / "authorized_keys").write_text(client_public_key(settings) + "\n")
    remote = root / "incoming"
    remote.mkdir()
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {key_file}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "StrictModes no",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
    ]))
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    server = SSHServer(root=root, port=port, user=user, known_hosts=known_hosts, remote_dir=remote, config=config,
                       log=root / "sshd.log")
    yield server
    server.stop()


@pytest.fixture
def sshd(sshd_factory):
    sshd_factory.start()
    return sshd_factory
