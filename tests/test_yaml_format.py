"""meta.yaml text is byte-identical to what PyYAML (and so MLflow) writes."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.stores.file.disk import dump_yaml, parse_yaml

TRICKY = [
    "",
    "0",
    "true",
    "null",
    "~",
    "1.5",
    "0x1f",
    "1:20",
    "2024-01-01",
    "file:///a/b",
    "a:",
    "-x",
    ".5",
    "0123",
    "1e5",
    "y",
    "on",
    "NO",
    ".inf",
    ".nan",
    "1_000",
    "0b11",
    "+1",
    "1.",
    "a b",
    "it's",
    "x\ny",
    "é",
]
values = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=30),
    st.text(alphabet="0123456789abcdef.:-_/eE+x", max_size=12),
    st.sampled_from(TRICKY),
    st.builds(list),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=8), values, min_size=1))
def test_dump_matches_pyyaml(data: dict) -> None:
    expected = yaml.dump(data, Dumper=yaml.SafeDumper, default_flow_style=False, allow_unicode=True)
    assert dump_yaml(data) == expected


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=8), values, min_size=1))
def test_parse_matches_pyyaml(data: dict) -> None:
    text = yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)
    assert parse_yaml("meta.yaml", text.encode()) == yaml.safe_load(text)


@given(st.text(max_size=200))
@settings(max_examples=500, deadline=None)
def test_parse_never_disagrees_with_pyyaml_on_any_text(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    if isinstance(expected, dict):
        assert parse_yaml("meta.yaml", text.encode()) == expected
