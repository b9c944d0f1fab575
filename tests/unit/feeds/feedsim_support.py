"""Helpers of the live-feed tests: run the simulator into a temporary landing zone and check every line."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from smartrehab.feeds.contracts import CST, check_event
from smartrehab.feeds.simulator import FlawConfig, simulate
from smartrehab.settings import Settings, get_settings

DAY = datetime(2026, 11, 27, tzinfo=CST)  # a Friday

#: Flaw rates high enough that every kind shows up in one simulated day at SF0.01.
HIGH_FLAWS = FlawConfig(
    duplicate=0.01, late=0.01, out_of_order=0.01, invalid_json=0.003, not_an_object=0.003,
    missing_event_id=0.003, unknown_feed=0.003, wrong_version=0.003, schema_violation=0.006,
    future_timestamp=0.003, oversize_messages=1,
)


@dataclass
class Line:
    """One line of one landed file, with what check_event made of it."""

    path: str
    number: int
    delivered_at: datetime
    raw: bytes
    event: dict | None
    reason: str | None


@dataclass
class Run:
    """A finished simulation: its landing folder, manifest, every line checked, and its duration."""

    root: Path
    manifest: dict[str, Any]
    seconds: float
    lines: list[Line] = field(default_factory=list)

    def valid(self, feed: str | None = None) -> list[dict]:
        return [ln.event for ln in self.lines if ln.event is not None and (feed is None or ln.event["feed"] == feed)]

    def unique_valid(self, feed: str | None = None) -> dict[str, dict]:
        return {e["event_id"]: e for e in self.valid(feed)}


def settings_for(root: Path, scale_factor: float = 0.01, seed: int | None = None) -> Settings:
    s = replace(get_settings(), landing_dir=root, scale_factor=scale_factor)
    return replace(s, seed=seed) if seed is not None else s


def run_sim(root: Path, *, hours: float = 24, check: bool = True, scale_factor: float = 0.01,
            seed: int | None = None, **kwargs: Any) -> Run:
    t = time.perf_counter()
    manifest = simulate(DAY, DAY + timedelta(hours=hours), settings=settings_for(root, scale_factor, seed), **kwargs)
    run = Run(root=root, manifest=manifest, seconds=time.perf_counter() - t)
    if check:
        for f in manifest["files"]:
            received = datetime.fromisoformat(f["delivered_at"])
            data = (root / f["path"]).read_bytes()
            for n, raw in enumerate(data.split(b"\n")[:-1], 1):
                event, reason = check_event(raw, received)
                run.lines.append(Line(f["path"], n, received, raw, event, reason))
    return run


def read_manifest(run: Run) -> dict:
    return json.loads((run.root / run.manifest["manifest"]).read_text())
