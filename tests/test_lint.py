"""ruff for Python and sqlfluff for the dbt models, as part of the test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_clean():
    res = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_sqlfluff_clean_on_dbt_models():
    res = subprocess.run([str(BIN / "sqlfluff"), "lint", "dbt/models", "ml/relapse_risk", "ml/security_situation"], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
