"""The JVM jars the platform needs, pinned in ``infra/jars.lock`` by version and SHA-256.

``fetch_jars()`` runs at set-up only (from Maven Central into ``var/jars``); jobs call
``jar_paths()``, which never touches the network and fails with a clear message when the cache
is missing or corrupt.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from smartrehab.checksum import file_sha256
from smartrehab.settings import Settings

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{MAVEN_CENTRAL}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"


class JarCacheError(RuntimeError):
    pass


def locked_jars(s: Settings) -> list[Jar]:
    lock = s.repo_root / "infra" / "jars.lock"
    out = []
    for n, line in enumerate(lock.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            coord, sha = line.split()
            group, artifact, version = coord.split(":")
        except ValueError as exc:
            raise JarCacheError(f"{lock}:{n}: expected 'group:artifact:version sha256'") from exc
        out.append(Jar(group, artifact, version, sha.lower()))
    return out


def jar_paths(s: Settings) -> list[Path]:
    """Paths of the cached jars; raises JarCacheError naming the jar and the fix."""
    paths = []
    for jar in locked_jars(s):
        path = s.jars_dir / jar.filename
        if not path.exists():
            raise JarCacheError(f"jar {jar.filename} is not in {s.jars_dir}: run `smartrehab setup`")
        paths.append(path)
    return paths


def fetch_jars(s: Settings, log=print) -> list[Path]:
    """Download missing jars and re-download any whose checksum does not match the lock."""
    s.jars_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for jar in locked_jars(s):
        path = s.jars_dir / jar.filename
        if path.exists() and file_sha256(path) == jar.sha256:
            paths.append(path)
            continue
        if path.exists():
            log(f"jar cache: {jar.filename} fails its checksum (corrupt or partial); fetching again")
        tmp = path.with_suffix(".part")
        log(f"jar cache: fetching {jar.url}")
        try:
            with urllib.request.urlopen(jar.url, timeout=120) as resp, tmp.open("wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise JarCacheError(f"could not fetch {jar.url}: {exc}; check access to Maven Central") from exc
        got = file_sha256(tmp)
        if got != jar.sha256:
            tmp.unlink(missing_ok=True)
            raise JarCacheError(
                f"{jar.filename}: SHA-256 {got} does not match infra/jars.lock ({jar.sha256})"
            )
        tmp.replace(path)
        paths.append(path)
    return paths


def verify_jars(s: Settings) -> list[str]:
    """Problems with the cache, one line each (empty when all jars are present and intact)."""
    problems = []
    for jar in locked_jars(s):
        path = s.jars_dir / jar.filename
        if not path.exists():
            problems.append(f"{jar.filename}: missing")
        elif file_sha256(path) != jar.sha256:
            problems.append(f"{jar.filename}: checksum mismatch")
    return problems
