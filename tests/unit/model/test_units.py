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


# Python's float(), int() and \d accept every script's decimal digits; the language does not.
FULLWIDTH_300 = "\uff13\uff10\uff10"
ARABIC_INDIC_300 = "\u0663\u0660\u0660"


@pytest.mark.parametrize(
    "bad",
    [f"{FULLWIDTH_300}ms", f"{ARABIC_INDIC_300}ms", "1\uff15s", "3\u0660m", "1_000ms", "\u20075s"],
)
def test_durations_accept_only_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["\uff19\uff19%", "\u0669\u0669%", "9_9%", "99.\uff19%"])
def test_percentages_accept_only_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="percentage"):
        parse_percentage(bad)


def test_percentages_still_accept_the_usual_spellings() -> None:
    assert parse_percentage("5%") == pytest.approx(0.05)
    assert parse_percentage(" 99.95 % ") == pytest.approx(0.9995)
    assert parse_percentage(".5%") == pytest.approx(0.005)


@pytest.mark.parametrize(
    ("adapter", "bad"),
    [
        ("ratio", ">= \uff10.\uff19\uff19"),
        ("ratio", ">= \u0660.\u0669"),
        ("ratio", ">=\u30000.99"),  # an ideographic space is not a separator
        ("duration", f"< {FULLWIDTH_300}ms"),
        ("number", "< \uff15"),
        ("number", "< 1_0"),
    ],
)
def test_thresholds_accept_only_ascii_digits(adapter: str, bad: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from aftershock.model.units import DurationThreshold, NumberThreshold, RatioThreshold

    kinds = {"ratio": RatioThreshold, "duration": DurationThreshold, "number": NumberThreshold}
    with pytest.raises(ValidationError):
        TypeAdapter(kinds[adapter]).validate_python(bad)
    ascii_text = {"ratio": ">= 0.99", "duration": "< 300ms", "number": "< 5"}[adapter]
    assert str(TypeAdapter(kinds[adapter]).validate_python(ascii_text)) == ascii_text
