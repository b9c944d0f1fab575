from __future__ import annotations

import os
import stat

import pytest

from smartrehab import jars
from smartrehab.settings import load_settings


def test_defaults_and_environment_overrides(tmp_path):
    s = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path), "SMARTREHAB_SPARK_MASTER": "spark://m:7077",
                       "SMARTREHAB_STORAGE_ROOT": "s3a://bureau-lake/smartrehab", "SMARTREHAB_THRIFT_PORT": "10009",
                       "SMARTREHAB_SPARK_CONF": "spark.hadoop.fs.s3a.endpoint=http://minio:9000;a.b=c"})
    assert s.spark_master == "spark://m:7077" and s.thrift_port == 10009
    assert s.warehouse == "s3a://bureau-lake/smartrehab"
    assert s.extra_spark_conf() == {"spark.hadoop.fs.s3a.endpoint": "http://minio:9000", "a.b": "c"}
    local = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path)})
    assert local.storage_root == str(tmp_path / "lake") and local.landing_dir == tmp_path / "landing"


def test_bad_spark_conf_is_reported():
    with pytest.raises(ValueError, match="not key=value"):
        load_settings({"SMARTREHAB_SPARK_CONF": "nonsense"}).extra_spark_conf()


def test_file_secrets_are_generated_once_and_private(tmp_path):
    s = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path)})
    a = s.secret("pseudonym_key")
    assert a == s.secret("pseudonym_key") and len(bytes.fromhex(a)) == 32
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / "pseudonym_key").st_mode)
    assert mode == 0o600


def test_env_secret_source_requires_the_variable(tmp_path):
    s = load_settings({"SMARTREHAB_SECRET_SOURCE": "env", "SMARTREHAB_SECRET_PSEUDONYM_KEY": "00" * 32})
    assert s.secret("pseudonym_key") == "00" * 32
    with pytest.raises(RuntimeError, match="SMARTREHAB_SECRET_OTHER"):
        s.secret("other")


def test_jar_lock_is_pinned_and_a_corrupt_cache_is_detected(tmp_path, monkeypatch):
    s = load_settings({})
    locked = jars.locked_jars(s)
    names = {j.artifact for j in locked}
    assert {"delta-spark_4.2_2.13", "delta-storage", "postgresql"} <= names
    assert all(len(j.sha256) == 64 for j in locked)
    fake = load_settings({"SMARTREHAB_VAR_DIR": str(tmp_path)})
    monkeypatch.setattr(type(fake), "jars_dir", property(lambda self: tmp_path / "jars"))
    (tmp_path / "jars").mkdir()
    assert len(jars.verify_jars(fake)) == len(locked)           # all missing
    with pytest.raises(jars.JarCacheError, match="smartrehab setup"):
        jars.jar_paths(fake)
    (tmp_path / "jars" / locked[0].filename).write_bytes(b"not a jar")
    assert f"{locked[0].filename}: checksum mismatch" in jars.verify_jars(fake)
