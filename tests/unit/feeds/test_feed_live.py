"""The live simulator continues the world's clock: contiguous windows, nothing twice, nothing skipped."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from smartrehab.feeds import live
from smartrehab.feeds.contracts import CST
from smartrehab.feeds.simulator import simulate
from smartrehab.settings import get_settings

START = datetime(2026, 11, 21, tzinfo=CST)


def _settings(tmp_path):
    return replace(get_settings(), landing_dir=tmp_path, scale_factor=0.01)


def _event_times(root):
    times = []
    for path in (root / "feeds").rglob("*.jsonl"):
        times += [datetime.fromisoformat(json.loads(line)["event_time"]) for line in path.read_text().splitlines()
                  if line.startswith("{") and '"event_time"' in line]
    return times


def test_it_refuses_to_start_without_a_generated_window(tmp_path):
    with pytest.raises(live.LiveError, match="smartrehab generate"):
        live.last_window_end(tmp_path)


def test_ticks_follow_the_wall_clock_from_the_newest_window(tmp_path):
    s = _settings(tmp_path)
    simulate(START, START + timedelta(hours=1), settings=s, batch_minutes=15)
    assert live.last_window_end(tmp_path) == START + timedelta(hours=1)
    wall = iter([0.0, 20 * 60 + 30, 40 * 60 + 50, 60 * 60 + 10])  # seconds of wall time at each reading
    end = live.run(s, None, ticks=3, tick_s=0, log=lambda _m: None, clock=lambda: next(wall), sleep=lambda _s: None)
    # 60 min 10 s of wall time: the whole minutes are simulated, the 10 s carry over to the next tick.
    assert end == START + timedelta(hours=2)
    assert live.last_window_end(tmp_path) == end
    windows = sorted((m["window_start"], m["window_end"]) for m in
                     (json.loads(p.read_text()) for p in (tmp_path / "feeds" / "_manifests").glob("*.json")))
    assert [datetime.fromisoformat(a) for a, _ in windows[1:]] == [datetime.fromisoformat(b) for _, b in windows[:-1]]
    assert len(windows) == 4
    times = _event_times(tmp_path)
    assert max(times) < end and min(times) >= START - timedelta(hours=6)  # late events stay within reason
    assert any(t >= START + timedelta(hours=1, minutes=40) for t in times)


def test_a_tick_under_a_minute_simulates_nothing(tmp_path):
    s = _settings(tmp_path)
    simulate(START, START + timedelta(minutes=30), settings=s, batch_minutes=15)
    before = sorted(p.name for p in (tmp_path / "feeds").rglob("*"))
    assert live.step(s, None, START + timedelta(minutes=30), START + timedelta(minutes=30, seconds=59)) \
        == START + timedelta(minutes=30)
    assert sorted(p.name for p in (tmp_path / "feeds").rglob("*")) == before
