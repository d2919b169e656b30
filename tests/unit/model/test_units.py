from datetime import timedelta

import pytest

from aftershock.model.units import format_duration, parse_duration, parse_percentage


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("5s", 5), ("10m", 600), ("1h30m", 5400), ("28d", 28 * 86400), ("1.5s", 1.5)],
)
def test_durations_parse_with_units(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", [5, 2.5, "5", "5 s", "5sec", "-1s", "", "s", True, None, "99999999w"]
)
def test_durations_without_units_or_garbage_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize("text", ["300ms", "5s", "10m", "1h30m", "28d", "1d2h3m4s5ms"])
def test_durations_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_zero_duration_formats_as_0s() -> None:
    assert format_duration(timedelta(0)) == "0s"


def test_percentages_need_a_percent_sign() -> None:
    assert parse_percentage("99.9%") == pytest.approx(0.999)
    for bad in ("99.9", 99.9, "101%", "-1%", "abc%", "nan%"):
        with pytest.raises(ValueError, match="percentage"):
            parse_percentage(bad)
