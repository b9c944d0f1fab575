"""Which periods the exchange DAGs export (spark_jobs/exchange/run.py): closed periods only, the ones due after
the last final delivery, and the receivers of a package. Pure Python, no JVM."""

from __future__ import annotations

from datetime import date

import pytest

from smartrehab.exchange.spec import load_spec, parse_period
from spark_jobs.exchange import run


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def test_a_day_is_closed_once_gold_holds_it(spec):
    assert run.latest_closed(spec, "population_daily", date(2026, 11, 20)).label == "2026-11-20"


def test_a_month_is_closed_five_days_after_its_end(spec):
    # gold up to 4 Dec: November is still open (it closes with the 5th), so October is the newest final month
    assert run.latest_closed(spec, "kpi_monthly", date(2026, 12, 4)).label == "2026-10"
    assert run.latest_closed(spec, "kpi_monthly", date(2026, 12, 5)).label == "2026-11"
    assert run.latest_closed(spec, "person_events", date(2027, 1, 31)).label == "2026-12"
    # across the year
    assert run.latest_closed(spec, "incident_report", date(2027, 1, 3)).label == "2026-11"


def test_due_periods_catch_up_after_the_last_final_delivery():
    newest = parse_period("day", "2026-11-20")
    assert run.periods_after(newest, None) == ["2026-11-20"]               # never delivered: the newest only
    assert run.periods_after(newest, "2026-11-20") == []                    # delivered already: nothing due
    assert run.periods_after(newest, "2026-11-17") == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert run.periods_after(newest, "2026-01-01", max_catch_up=3) == ["2026-11-18", "2026-11-19", "2026-11-20"]
    month = parse_period("month", "2027-02")
    assert run.periods_after(month, "2026-11") == ["2026-12", "2027-01", "2027-02"]
    assert run.periods_after(month, "2027-03") == []


def test_receivers_of_a_package(spec):
    assert run.package_receivers(spec, "person_events") == ["moj", "police", "procuratorate"]
    assert run.package_receivers(spec, "incident_report", ["court"]) == ["court"]
    with pytest.raises(run.ExportError, match="does not receive population_daily"):
        run.package_receivers(spec, "population_daily", ["police"])
