import pytest

pytestmark = pytest.mark.spark


def test_load(legacy_loaded):
    assert legacy_loaded
