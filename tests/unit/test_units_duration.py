"""Go's duration syntax, read once for the health flags, Dockerfile HEALTHCHECK and compose."""

import pytest

from dockerbank.units import go_duration_ns


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), (".5s", 5 * 10**8), ("1.5h", 5400 * 10**9),
    ("-1s", -(10**9)), ("+2us", 2000), ("3µs", 3000), ("1h2m3s4ms", 3723004 * 10**6),
])
def test_go_durations_read_as_go_does(text, ns):
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "10", "1d", "s", "1s2", "1 s", "--1s", "1y"])
def test_what_go_refuses_is_none(text):
    assert go_duration_ns(text) is None


def test_days_only_where_asked():
    assert go_duration_ns("1d2h", days=True) == 26 * 3600 * 10**9
    assert go_duration_ns("1d") is None
