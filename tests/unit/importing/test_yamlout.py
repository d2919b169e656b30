"""The importer's YAML writer: every value reads back as itself; comments stay comments."""

import yaml
from hypothesis import given
from hypothesis import strategies as st

from aftershock.importing.yamlout import Comment, Flow, Noted, dump

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    st.sampled_from(
        ["yes", "No", "on", "null", "~", "1.5", "0x1f", "1:20", "- x", "#", "a: b", ""]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=4))
def test_everything_reads_back_as_written(value) -> None:
    assert yaml.safe_load(dump(value)) == value


@given(st.lists(st.text(), min_size=1, max_size=3), st.text())
def test_comments_never_leak_into_data(lines, text) -> None:
    doc = {Comment(tuple(lines)): None, "a": Noted([Comment(tuple(lines)), text], tuple(lines))}
    assert yaml.safe_load(dump(doc)) == {"a": [text]}


def test_flow_and_comment_only_collections() -> None:
    doc = {"argv": Flow(["sleep", "10", "-x"]), "empty": [Comment(("nothing here",))]}
    text = dump(doc)
    assert 'argv: [sleep, "10", "-x"]' in text
    assert "empty: []\n  # nothing here" in text
    assert yaml.safe_load(text) == {"argv": ["sleep", "10", "-x"], "empty": []}


def test_durations_and_names_stay_plain() -> None:
    assert dump({"for": "1m30s", "at": "1.5ms", "name": "slow-db"}) == (
        "for: 1m30s\nat: 1.5ms\nname: slow-db\n"
    )
