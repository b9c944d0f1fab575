"""Feed monitoring thresholds (expectations/feeds.yaml) and the legacy person pseudonyms the simulator uses."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from smartrehab.feeds.contracts import feed_names
from smartrehab.feeds.monitoring import ThresholdError, default_path, load_thresholds, parse_thresholds


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(default_path().read_text(encoding="utf-8"))


def test_repository_thresholds_load_and_cover_every_feed(doc):
    th = load_thresholds()
    assert set(th.feed_silence_minutes) == set(feed_names()) == set(th.device_silence_minutes)
    assert th.device_silence_minutes["vitals"] == doc["freshness"]["vitals"]["device_silence_minutes"]
    assert th.volume_low_ratio < 1 < th.volume_high_ratio
    assert all(lo < hi for lo, hi in th.vitals_normal.values())


@pytest.mark.parametrize("patch, words", [
    (lambda d: d.update(clock="sundial"), "clock"),
    (lambda d: d["freshness"].update(cctv={"feed_silence_minutes": 5}), "'cctv' is not a feed"),
    (lambda d: d["freshness"]["vitals"].update(device_silence_minutes=-3), "freshness.vitals.device_silence_minutes"),
    (lambda d: d["volume"].update(low_ratio=1.5), "low_ratio < 1 < high_ratio"),
    (lambda d: d["ranges"].append({"feed": "vitals", "field": "heart_rate"}), "ranges["),
    (lambda d: d["vitals_normal"].update(heart_rate={"min": 120, "max": 50}), "vitals_normal.heart_rate"),
])
def test_bad_thresholds_name_the_key(doc, patch, words):
    bad = yaml.safe_load(yaml.safe_dump(doc))
    patch(bad)
    with pytest.raises(ThresholdError, match=None) as err:
        parse_thresholds(bad)
    assert words in str(err.value)


def test_legacy_persons_are_silver_pseudonyms_of_people_held(tmp_path):
    from dataclasses import replace

    from smartrehab.catalog import load_catalog
    from smartrehab.feeds.persons import centres_of, legacy_persons
    from smartrehab.generate.legacy import simulate
    from smartrehab.settings import get_settings
    from spark_jobs.common.pseudonym import pseudonym

    s = replace(get_settings(), var_dir=tmp_path, secret_source="file")
    as_of = date(2026, 11, 20)
    got = legacy_persons(s, as_of, days=2)
    # Independently: the world generate(as_of, days=2) builds, everyone admitted and not released on its last day.
    last = date(2026, 11, 22)
    world = simulate(load_catalog(s.catalog_dir), s.scale_factor, s.seed, last)
    key = s.secret("pseudonym_key")
    held = {pseudonym(key, "person_pk", a.person_no): a for a in world.admissions if a.released_on is None}
    assert centres_of(got) == {pk: a.centre for pk, a in held.items()} and len(got) > 0
    assert all(len(pk) == 64 for pk in got)
    # Zone and unit: the open zone stay, in a unit of that zone of the person's centre.
    for pk, where in got.items():
        assert where.zone == held[pk].zone_on(last) == held[pk].zones[-1][0]
        unit = next(u for u in world.units[where.centre] if u.code == where.unit)
        assert unit.zone == where.zone
