"""Fixtures of the live-feed tests: simulated runs into temporary landing zones (no JVM, a few seconds)."""

from __future__ import annotations

import pytest
from feedsim_support import HIGH_FLAWS, Run, run_sim

from smartrehab.feeds.simulator import FlawConfig


@pytest.fixture(scope="session")
def flawed_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 with every flaw kind, incidents and silent devices."""
    return run_sim(tmp_path_factory.mktemp("flawed"), flaws=HIGH_FLAWS, incidents_per_centre_day=2.0,
                   silent_device_rate=0.05)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 without flaws, incidents or silent devices (exact counts)."""
    return run_sim(tmp_path_factory.mktemp("clean"), flaws=FlawConfig.none(), incidents_per_centre_day=0.0,
                   silent_device_rate=0.0)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 with the default configuration (as the command line runs it)."""
    return run_sim(tmp_path_factory.mktemp("default"))
