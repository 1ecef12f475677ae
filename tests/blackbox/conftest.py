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


@pytest.fixture
def make_herd(procs, tmp_path):
    """make_herd(topology, **kw) gives a SupHerd (supervisorlib) in
    tmp_path; at teardown every herd made is stopped and its logs must
    hold no sanitizer report."""
    from supervisorlib import SupHerd, sanitizer_reports
    herds = []

    def make(topology, **kw):
        h = SupHerd(procs, tmp_path, topology, **kw)
        herds.append(h)
        return h
    yield make
    for h in herds:
        h.track()
        try:
            h.ctl("stop", timeout=30)
        except Exception:
            pass
    for h in herds:
        assert not sanitizer_reports(h), sanitizer_reports(h)
