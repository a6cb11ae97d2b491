from __future__ import annotations

import html
import json

import pytest

from synthgate.labeling.implicit import FIELD_ORDER, AigcLabel, InvalidLabel, parse_aigc
from tests.labeling.implicit.conftest import PRODUCER


def test_gbe_to_json_keeps_annex_e_field_order() -> None:
    label = AigcLabel(Label="1", ContentProducer=PRODUCER, ProduceID="abc", PropagateID="p-1")
    assert list(json.loads(label.to_json())) == list(FIELD_ORDER)
    assert label.to_json().startswith('{"Label":"1","ContentProducer":"' + PRODUCER)


@pytest.mark.parametrize("value", ["has space", "中文", "back\\slash", "tab\t"])
def test_gbe_values_outside_annex_e_charset_are_refused(value: str) -> None:
    with pytest.raises(InvalidLabel, match="Annex E character set"):
        AigcLabel(ProduceID=value)


def test_gbe_provider_code_is_validated() -> None:
    bad = PRODUCER[:-6] + "X" + PRODUCER[-5:]  # breaks the USCC check character
    with pytest.raises(InvalidLabel, match="ContentProducer"):
        AigcLabel(ContentProducer=bad)
    with pytest.raises(InvalidLabel, match="Label"):
        AigcLabel(Label="4")


def test_gbe_reader_accepts_bare_wrapped_and_html_escaped_forms() -> None:
    label = AigcLabel(Label="1", ContentProducer=PRODUCER, ProduceID="x-1")
    bare = label.to_json()
    assert parse_aigc(bare) == label
    assert parse_aigc('{"AIGC": ' + bare + "}") == label
    assert parse_aigc(html.escape(bare)) == label
    assert parse_aigc(json.dumps({"AIGC": bare})) == label  # wrapper holding the JSON as a string
    assert parse_aigc('{"Label": 2}').Label == "2"  # numbers seen in the wild are normalised


@pytest.mark.parametrize("text", ["not json", "[1,2]", '{"Label":"1","Extra":"x"}', '{"ProduceID":"x"}'])
def test_gbe_reader_rejects_non_labels_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidLabel):
        parse_aigc(text)
