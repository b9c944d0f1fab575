"""Monitoring thresholds of the live feeds, from ``expectations/feeds.yaml`` (checked when loaded).

Pure Python (no Spark): :func:`load_thresholds` gives a :class:`Thresholds` that the hourly aggregate and
the quality alerts (``spark_jobs/feeds/hourly.py``, ``quality.py``) read. A wrong file fails with the file,
the key and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smartrehab.feeds.contracts import feed_names

CLOCKS = ("wall", "data")


class ThresholdError(ValueError):
    """expectations/feeds.yaml is not usable as it stands."""


@dataclass(frozen=True)
class RangeRule:
    feed: str
    field: str
    min: float | None
    max: float | None


@dataclass(frozen=True)
class Thresholds:
    clock: str
    feed_silence_minutes: dict[str, int | None]
    device_silence_minutes: dict[str, int | None]
    volume_baseline_hours: int
    volume_min_baseline: float
    volume_low_ratio: float
    volume_high_ratio: float
    volume_feeds: tuple[str, ...]
    ranges: tuple[RangeRule, ...]
    vitals_normal: dict[str, tuple[float, float]]
    low_battery_pct: int
    fault_alarm_types: tuple[str, ...]
    fault_perimeter_events: tuple[str, ...]
    access_anomaly_results: tuple[str, ...]
    patrol_on_time_s: int


def default_path() -> Path:
    from smartrehab.settings import get_settings

    return get_settings().repo_root / "expectations" / "feeds.yaml"


def _num(doc: dict, key: str, where: str, *, positive: bool = True) -> float:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or (positive and v <= 0):
        raise ThresholdError(f"{where}: '{key}' must be a {'positive ' if positive else ''}number, got {v!r}")
    return v


def _feed(name: Any, where: str, known: list[str]) -> str:
    if name not in known:
        raise ThresholdError(f"{where}: '{name}' is not a feed of contracts/ (one of {known})")
    return name


def parse_thresholds(doc: dict[str, Any], where: str = "expectations/feeds.yaml") -> Thresholds:
    known = feed_names()
    if not isinstance(doc, dict):
        raise ThresholdError(f"{where}: expected a mapping at the top")
    clock = doc.get("clock", "data")
    if clock not in CLOCKS:
        raise ThresholdError(f"{where}: clock must be one of {CLOCKS}, got {clock!r}")
    fresh = doc.get("freshness") or {}
    feed_s, dev_s = {}, {}
    for feed, spec in fresh.items():
        _feed(feed, f"{where} freshness", known)
        for key, out in (("feed_silence_minutes", feed_s), ("device_silence_minutes", dev_s)):
            v = (spec or {}).get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ThresholdError(f"{where} freshness.{feed}.{key}: a positive whole number of minutes or null")
            out[feed] = v
    vol = doc.get("volume") or {}
    low, high = _num(vol, "low_ratio", f"{where} volume"), _num(vol, "high_ratio", f"{where} volume")
    if not low < 1 < high:
        raise ThresholdError(f"{where} volume: need low_ratio < 1 < high_ratio, got {low}, {high}")
    ranges = []
    for i, r in enumerate(doc.get("ranges") or []):
        w = f"{where} ranges[{i}]"
        feed = _feed(r.get("feed"), w, known)
        if not isinstance(r.get("field"), str):
            raise ThresholdError(f"{w}: 'field' must name a payload field of {feed}")
        lo, hi = r.get("min"), r.get("max")
        if lo is None and hi is None:
            raise ThresholdError(f"{w}: give min, max or both")
        ranges.append(RangeRule(feed, r["field"], lo, hi))
    normal = {}
    for name, spec in (doc.get("vitals_normal") or {}).items():
        lo, hi = _num(spec, "min", f"{where} vitals_normal.{name}"), _num(spec, "max", f"{where} vitals_normal.{name}")
        if lo >= hi:
            raise ThresholdError(f"{where} vitals_normal.{name}: min must be below max")
        normal[name] = (lo, hi)
    health = doc.get("device_health") or {}
    return Thresholds(
        clock=clock, feed_silence_minutes=feed_s, device_silence_minutes=dev_s,
        volume_baseline_hours=int(_num(vol, "baseline_hours", f"{where} volume")),
        volume_min_baseline=_num(vol, "min_baseline", f"{where} volume"),
        volume_low_ratio=low, volume_high_ratio=high,
        volume_feeds=tuple(_feed(f, f"{where} volume.feeds", known) for f in vol.get("feeds") or []),
        ranges=tuple(ranges), vitals_normal=normal,
        low_battery_pct=int(_num(health, "low_battery_pct", f"{where} device_health")),
        fault_alarm_types=tuple(health.get("fault_alarm_types") or ()),
        fault_perimeter_events=tuple(health.get("fault_perimeter_events") or ()),
        access_anomaly_results=tuple(doc.get("access_anomaly_results") or ()),
        patrol_on_time_s=int(_num(doc, "patrol_on_time_s", where)),
    )


def load_thresholds(path: Path | str | None = None) -> Thresholds:
    p = Path(path) if path is not None else default_path()
    return parse_thresholds(yaml.safe_load(p.read_text(encoding="utf-8")), str(p))
