"""Durations and percentages as people write them in `monitoring.yaml`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slo.units import format_duration, parse_duration, parse_percent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("30d", 30 * 86400.0),
        ("1w", 604800.0),
        (" 2s ", 2.0),
        ("0s", 0.0),
        (5, 5.0),
        (0.25, 0.25),
        ("5", 5.0),  # a bare number of seconds, as `${TIMEOUT:-5}` expands
    ],
)
def test_parse_duration_accepts_what_people_write(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["2x", "", "s", "2 s", "2s 3m", "1h-5m", "-1s", "fast", "1e3s"])
def test_parse_duration_rejects_malformed_text_with_examples(bad: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*\(use e\.g\. 500ms, 2s"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [True, None, [2], {"s": 2}])
def test_parse_duration_rejects_other_types(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_parse_duration_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1h"),
        (0.25, "250ms"),
        (90, "90s"),
        (120, "2m"),
        (86400 * 30, "30d"),
        (604800, "1w"),
        (0, "0ms"),
    ],
)
def test_format_duration_is_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_round_trips_whole_milliseconds(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("value", "fraction"),
    [
        (99.9, 0.999),
        ("99.9%", 0.999),
        ("5%", 0.05),
        (" 5 % ", 0.05),
        (5, 0.05),
        (0, 0.0),
        (100, 1.0),
        ("80", 0.8),
    ],
)
def test_parse_percent_reads_numbers_as_percent(value: object, fraction: float) -> None:
    assert parse_percent(value) == pytest.approx(fraction)


def test_a_small_number_is_a_small_percentage_not_a_fraction() -> None:
    # 0.05 in the file means 0.05 %, never 5 %: one reading, however the number looks.
    assert parse_percent(0.05) == pytest.approx(0.0005)


@pytest.mark.parametrize("bad", [101, -1, "120%", "-5%"])
def test_parse_percent_rejects_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError, match="must be between 0 and 100"):
        parse_percent(bad)


@pytest.mark.parametrize("bad", ["lots", "", "%", True, None, [5]])
def test_parse_percent_rejects_what_is_not_a_percentage(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid percentage"):
        parse_percent(bad)
