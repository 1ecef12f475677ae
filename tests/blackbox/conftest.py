import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from herdlib import ProcessRegistry  # noqa: E402


@pytest.fixture
def procs():
    """Every process a test starts is registered here and killed by pid at
    teardown, whether the test passed or not."""
    registry = ProcessRegistry()
    try:
        yield registry
    finally:
        registry.cleanup()


@pytest.fixture
def places():
    """The suite's own stand-in for Google's Nearby Search."""
    from places_double import PlacesDouble
    double = PlacesDouble()
    try:
        yield double
    finally:
        double.close()
