"""GB-5.1 text labels, and the streaming guard that labels and screens as text arrives."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthgate.errors import InvalidInput, Refused
from synthgate.gateway.streaming import StreamGuard
from synthgate.labeling.text import TextLabel, check_label_wording, is_conformant_label
from synthgate.moderation.detectors import TermListDetector, fold


@pytest.mark.parametrize(
    "wording", ["AI生成", "人工智能生成", "人工智能生成合成", "[AI 合成内容]", "本内容由人工智能生成"]
)
def test_gb51_conformant_wordings(wording: str) -> None:
    assert check_label_wording(wording) == wording and is_conformant_label(wording)


@pytest.mark.parametrize("wording", ["AI", "人工智能", "生成", "MAIL生成", "", "   "])
def test_gb51_wordings_missing_an_element_are_refused(wording: str) -> None:
    with pytest.raises(InvalidInput):
        check_label_wording(wording)


def test_gb51_positions() -> None:
    assert TextLabel("AI生成", "start").apply("x") == "AI生成\nx"
    assert TextLabel("AI生成", "end").apply("x") == "x\nAI生成"
    assert TextLabel("AI生成", "both").apply("x") == "AI生成\nx\nAI生成"


def test_fold_keeps_length_and_folds_width_and_case() -> None:
    text = "ＦＯＲＢＩＤＤＥＮ Term ß"
    assert len(fold(text)) == len(text)
    assert fold("ＡＢＣ") == "abc"


def _chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@given(st.text(alphabet="ab禁词 x", max_size=60), st.lists(st.integers(0, 200), max_size=20))
def test_gb51_stream_guard_releases_clean_text_whole_and_labeled(text: str, cuts: list[int]) -> None:
    detector = TermListDetector(["禁词", "abba"])
    if detector.scan(text):
        return
    guard = StreamGuard(detector, TextLabel("AI生成", "both"))
    sent = guard.opening() + "".join(guard.feed(chunk) for chunk in _chunks(text, cuts)) + guard.closing()
    assert sent == f"AI生成\n{text}\nAI生成"


@given(st.text(alphabet="ab禁词 x", max_size=60), st.lists(st.integers(0, 200), max_size=20))
def test_dsp10_stream_guard_never_sends_a_blocked_character(text: str, cuts: list[int]) -> None:
    detector = TermListDetector(["禁词", "abba"])
    findings = detector.scan(text)
    if not findings:
        return
    first_start = min(f.span[0] for f in findings if f.span)
    guard = StreamGuard(detector, TextLabel("AI生成", "end"))
    sent = ""
    with pytest.raises(Refused):
        for chunk in _chunks(text, cuts):
            sent += guard.feed(chunk)
        guard.closing()
    assert len(sent) <= first_start, "a character of a blocked term was released"
