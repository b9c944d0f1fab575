"""Spark jobs of a run, counted by where they came from: read from Spark's event log.

Run a benchmark with the event log on, then group the jobs of its last N (or all) by the Python line or
Delta operation that started them, with their summed duration:

    SMARTREHAB_SPARK_CONF='spark.eventLog.enabled=true;spark.eventLog.dir=file:///tmp/evlog' \\
        .venv/bin/python bench/bench_legacy.py --sf 0.01
    .venv/bin/python bench/jobs_by_call_site.py /tmp/evlog/eventlog_v2_local-* --last 1939

``--last`` takes the job count that ``bench_legacy.py`` printed for the day of interest (its jobs are the
run's last). Standard library and ``zstandard`` (Spark 4 compresses event logs with zstd by default).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path


def events(log_dir: Path):
    import zstandard

    parts = sorted(log_dir.glob("events_*"), key=lambda p: int(p.name.split("_")[1]))
    for part in parts:
        raw = part.read_bytes()
        if part.suffix == ".zstd":
            raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a log still being written


def where(details: str) -> str:
    """The first lines of this repository in a call site, else its first line."""
    ours = re.findall(r"(spark_jobs/[\w/]+\.py|smartrehab/[\w/]+\.py|bench/\w+\.py):(\d+)", details or "")
    return "; ".join(f"{f}:{n}" for f, n in ours[:2]) or (details or "-").split("\n")[0][:70]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log_dir", type=Path, help="an eventlog_v2_* folder")
    ap.add_argument("--last", type=int, default=0, help="only the run's last N jobs")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    starts, ends, sql = [], {}, {}
    for e in events(args.log_dir):
        kind = e.get("Event", "")
        if kind == "SparkListenerJobStart":
            starts.append(e)
        elif kind == "SparkListenerJobEnd":
            ends[e["Job ID"]] = e["Completion Time"]
        elif kind.endswith("SQLExecutionStart"):
            sql[e["executionId"]] = e
    jobs = starts[-args.last:] if args.last else starts
    groups: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for job in jobs:
        props = job.get("Properties", {})
        root = sql.get(int(props.get("spark.sql.execution.root.id", -1)))
        own = sql.get(int(props.get("spark.sql.execution.id", -1)))
        origin = where(root["details"]) if root else where(props.get("callSite.long", ""))
        step = own["description"][:60].replace("\n", " ") if own else "-"
        g = groups[f"{origin} | {step}"]
        g[0] += 1
        g[1] += (ends.get(job["Job ID"], job["Submission Time"]) - job["Submission Time"]) / 1000
    print(f"{len(jobs)} jobs")
    for name, (n, seconds) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"{n:6d} jobs {seconds:8.1f} s  {name}")


if __name__ == "__main__":
    main()
