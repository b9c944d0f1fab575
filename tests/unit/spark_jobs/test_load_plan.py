"""How the legacy loader picks row projections for a delivery day: by the size of the day's files."""

from __future__ import annotations

from dataclasses import replace

from smartrehab.settings import get_settings
from spark_jobs.legacy.ingest import projections_for


def _files(tmp_path, *sizes):
    out = []
    for i, n in enumerate(sizes):
        p = tmp_path / f"T{i}.csv"
        p.write_bytes(b"x" * n)
        out.append(p)
    return out


def test_a_day_of_small_files_is_interpreted_and_a_big_one_generated(tmp_path):
    s = replace(get_settings(), legacy_interpreted_max_mib=1.0)
    assert projections_for(s, _files(tmp_path, 300_000, 300_000, 2**20 - 600_000)) == "interpreted"
    # One byte over the threshold in total, though every file is small.
    assert projections_for(s, _files(tmp_path, 300_000, 300_000, 2**20 - 600_000 + 1)) == "generated"


def test_zero_keeps_generated_code_for_every_day(tmp_path):
    s = replace(get_settings(), legacy_interpreted_max_mib=0.0)
    assert projections_for(s, _files(tmp_path, 10)) == "generated"
    assert projections_for(s, []) == "generated"
