"""A task retry after the JVM died (an out-of-memory) gets a fresh Spark session, and an out-of-memory
failure names the setting to change. Run in a child process: the session-wide Spark is not touched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from smartrehab.settings import auto_driver_memory, load_settings
from smartrehab.spark import explain_out_of_memory

CHILD = textwrap.dedent("""
    from smartrehab.spark import get_spark
    first = get_spark("recovery-test")
    assert first.range(3).count() == 3
    first.sparkContext._gateway.proc.kill()      # the JVM dies, as after an OutOfMemoryError
    first.sparkContext._gateway.proc.wait()
    second = get_spark("recovery-test")
    assert second is not first
    print("after restart", second.range(5).count())
""")


@pytest.mark.spark
def test_a_dead_jvm_is_replaced_by_a_fresh_session(metastore, settings):
    env = {**os.environ, "PYTHONPATH": str(settings.repo_root)}
    res = subprocess.run([sys.executable, "-c", CHILD], cwd=settings.repo_root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "after restart 5" in res.stdout
    assert "raise SMARTREHAB_SPARK_DRIVER_MEMORY" in res.stderr


def test_out_of_memory_names_the_setting():
    s = load_settings({"SMARTREHAB_SPARK_DRIVER_MEMORY": "3g"})
    err = RuntimeError("An error occurred while calling o123.saveAsTable. : java.lang.OutOfMemoryError: Java heap space")
    hint = explain_out_of_memory(err, s)
    assert "SMARTREHAB_SPARK_DRIVER_MEMORY" in hint and "spark.driver.memory=3g" in hint
    assert explain_out_of_memory(ValueError("a column is missing"), s) is None


def test_driver_memory_follows_the_machine():
    gib = 2**30
    assert auto_driver_memory(4 * gib) == "2g"
    assert auto_driver_memory(24 * gib) == "8g"
    assert auto_driver_memory(128 * gib) == "16g"
    assert load_settings({"SMARTREHAB_SPARK_DRIVER_MEMORY": "5g"}).spark_driver_memory == "5g"
    assert load_settings({}).spark_driver_memory.endswith("g")
