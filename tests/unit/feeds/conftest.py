"""Fixtures of the live-feed tests: simulated runs into temporary landing zones (no JVM, a few seconds)."""

from __future__ import annotations

import pytest
from feedsim_support import HIGH_FLAWS, Run, run_sim

from smartrehab.feeds.simulator import FlawConfig


@pytest.fixture(scope="session")
def flawed_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 with every flaw kind, silent devices and many incidents (40 x the shared hazard)."""
    return run_sim(tmp_path_factory.mktemp("flawed"), flaws=HIGH_FLAWS, incident_scale=40.0,
                   silent_device_rate=0.05)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 without flaws, incidents or silent devices (exact counts)."""
    return run_sim(tmp_path_factory.mktemp("clean"), flaws=FlawConfig.none(), incident_scale=0.0,
                   silent_device_rate=0.0)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One day at SF0.01 with the default configuration (as the command line runs it)."""
    return run_sim(tmp_path_factory.mktemp("default"))
