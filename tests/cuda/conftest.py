"""Fixtures of the device tests: one set of random weights per model family."""

from __future__ import annotations

import pytest
from device_checks import FAMILIES, build_network


@pytest.fixture(scope="module")
def networks():
    """Family → its tiny random network on the CPU (None for StreetNet), copied to each device by the tests."""
    return {family: build_network(family) for family in FAMILIES}
