"""The live simulator: keeps the centres' systems sending feed files, so that the picture moves.

``smartrehab serve --live`` starts ``python -m smartrehab.feeds.live`` beside the other services (it is stopped
by ``smartrehab stop``) and unpauses the ``feeds_ingest`` DAG, whose 15-minute schedule ingests what lands.

The simulated clock continues the generated world's: the first window starts where the last simulated window
ended (``window_end`` of the newest manifest under ``<landing>/feeds/_manifests/``) and each tick simulates the
whole minutes of wall time that have passed since, in 15-minute deliveries, for the people the legacy world
holds on its last day (``legacy_persons``, as ``smartrehab generate`` made them). The feeds' freshness checks
use the data clock (``clock: data`` in ``expectations/feeds.yaml``), so a world that runs some days behind the
wall clock is judged on its own time. Stopping and starting again resumes from the newest manifest: no window
is simulated twice and none is skipped.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from smartrehab.feeds.contracts import CST
from smartrehab.settings import Settings, get_settings

TICK_S = 60
BATCH_MINUTES = 15


class LiveError(RuntimeError):
    pass


def last_window_end(landing: Path) -> datetime:
    """The end of the newest simulated window in the landing zone."""
    ends = []
    for path in sorted((landing / "feeds" / "_manifests").glob("manifest_*.json")):
        try:
            ends.append(datetime.fromisoformat(json.loads(path.read_text())["window_end"]))
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise LiveError(f"{path}: not a simulator manifest ({exc}); remove it or regenerate the feeds") from exc
    if not ends:
        raise LiveError(f"no simulated feed window under {landing / 'feeds' / '_manifests'}: run `smartrehab "
                        "generate` (it simulates the feeds of the demo window) before the live simulator")
    return max(ends).astimezone(CST)


def step(s: Settings, persons, since: datetime, until: datetime, log=print) -> datetime:
    """Simulate the whole minutes of ``[since, until)``; returns the new end (``since`` if under a minute)."""
    from smartrehab.feeds.simulator import simulate

    until = until.replace(second=0, microsecond=0)
    if until <= since:
        return since
    manifest = simulate(since, until, settings=s, persons=persons, batch_minutes=BATCH_MINUTES)
    log(f"feeds live: {since:%Y-%m-%d %H:%M} .. {until:%H:%M}, {sum(manifest['counts']['lines'].values())} lines, "
        f"{manifest['counts']['incidents']} incidents")
    return until


def run(s: Settings, persons, ticks: int | None = None, tick_s: float = TICK_S, log=print,
        clock=time.monotonic, sleep=time.sleep) -> datetime:
    """Follow the wall clock (``clock``) from the newest window on; ``ticks`` bounds the loop (None: until
    stopped). Returns the world's clock when it stops."""
    landing = Path(s.landing_dir)
    sim_at = last_window_end(landing)
    wall0 = clock()
    log(f"feeds live: the world's clock resumes at {sim_at:%Y-%m-%d %H:%M} (+08:00), {len(persons or ())} people")
    n = 0
    while ticks is None or n < ticks:
        sleep(tick_s)
        n += 1
        target = sim_at + timedelta(seconds=clock() - wall0)
        new = step(s, persons, sim_at, target, log)
        wall0 += (new - sim_at).total_seconds()
        sim_at = new
    return sim_at


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m smartrehab.feeds.live", description=__doc__.split("\n")[0])
    ap.add_argument("--as-of", default="2026-11-20", help="as `smartrehab generate --as-of`")
    ap.add_argument("--days", type=int, default=1, help="as `smartrehab generate --days`")
    ap.add_argument("--tick-seconds", type=float, default=TICK_S)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from smartrehab.feeds.persons import legacy_persons

    s = get_settings()
    try:
        run(s, legacy_persons(s, date.fromisoformat(args.as_of), args.days), tick_s=args.tick_seconds,
            log=lambda m: print(m, flush=True))
    except LiveError as exc:
        print(f"feeds live: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
