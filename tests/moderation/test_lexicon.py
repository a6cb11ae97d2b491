"""The lexicon matcher: evasion families, spans in the original text, allow-list, linear time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.moderation.lexicon import LexiconEntry, LexiconMatcher, term_variants
from synthgate.moderation.normalize import normalize

ENTRIES = [
    LexiconEntry("e1", "term", "法轮大法", "A.1.8"),
    LexiconEntry("e2", "term", "制造炸弹", "A.1.5"),
    LexiconEntry("e3", "term", "bomb recipe", "A.1.5", 4),
    LexiconEntry("e4", "term", "ass", "A.1.6", 2),
    LexiconEntry("e5", "term", "六四", "A.1.7"),
    LexiconEntry("e6", "term", "法轮", "A.1.8", 3),
    LexiconEntry("a1", "allow", "法轮寺", "A.1.8"),
    LexiconEntry("p1", "pattern", r"\bkill\s+the\s+\w+\b", "A.1.5"),
]
MATCHER = LexiconMatcher(ENTRIES, version="t")

EVASIONS = {
    "width": ("看ｂｏｍｂ　ｒｅｃｉｐｅ了", "ｂｏｍｂ　ｒｅｃｉｐｅ", "e3"),
    "case": ("the BoMb RECIPE is", "BoMb RECIPE", "e3"),
    "traditional": ("他說製造炸彈很難", "製造炸彈", "e2"),
    "spaces": ("他说制 造 炸  弹很难", "制 造 炸  弹", "e2"),
    "symbols": ("他说制.造*炸_弹!很难", "制.造*炸_弹", "e2"),
    "zero_width": ("他说制\u200b造\u200d炸\ufeff弹很难", "制\u200b造\u200d炸\ufeff弹", "e2"),
    "repeats": ("他说制制制造造炸弹弹很难", "制制制造造炸弹弹", "e2"),
    "lookalike": ("a bоmb rеcipе (Cyrillic)", "bоmb rеcipе", "e3"),
    "digit_circled": ("纪念⑥④", "⑥④", "e5"),
    "digit_chinese": ("纪念陆肆", "陆肆", "e5"),
    "digit_parenthesised": ("纪念⑹⑷", "⑹⑷", "e5"),
    "pinyin": ("学 fa lun da fa 吧", "fa lun da fa", "e1"),
    "initials": ("学 FLDF 吧", "FLDF", "e1"),
}


@pytest.mark.parametrize("family", sorted(EVASIONS))
def test_dsp10_each_evasion_family_is_caught_with_its_original_span(family: str) -> None:
    text, evidence, entry = EVASIONS[family]
    findings = [f for f in MATCHER.scan(text) if f.rule == entry]
    assert findings, f"{family} evasion not caught"
    span = findings[0].span
    assert span is not None and text[span[0] : span[1]] == evidence
    assert findings[0].evidence == evidence


def test_dsp10_allow_list_suppresses_a_known_false_positive() -> None:
    assert [f.rule for f in MATCHER.scan("我们去法轮寺烧香")] == []
    assert [f.rule for f in MATCHER.scan("我们去法轮功")] == ["e6"]


def test_word_boundaries_keep_latin_terms_out_of_longer_words() -> None:
    assert MATCHER.scan("a classic class assignment") == []
    assert [f.rule for f in MATCHER.scan("what an ass!")] == ["e4"]
    assert [f.rule for f in MATCHER.scan("中文ass中文")] == ["e4"]


def test_clean_text_has_no_findings() -> None:
    clean = (
        "今天天气很好，我们去公园散步。The weather is fine; a classic day for a picnic. 法律问题请咨询律师。"
    )
    assert MATCHER.scan(clean) == []


def test_patterns_run_on_re2_and_cannot_backtrack() -> None:
    found = MATCHER.scan("I will KILL  the king")
    assert [f.rule for f in found] == ["p1"] and found[0].evidence == "KILL  the king"
    evil = LexiconMatcher([LexiconEntry("x", "pattern", r"(a+)+$", "A.1.8")])
    started = time.perf_counter()
    assert evil.scan("a" * 200_000 + "!") == []
    assert time.perf_counter() - started < 5, "a catastrophic pattern backtracked"


def test_dsp10_one_megabyte_of_adversarial_text_is_screened() -> None:
    # Near-misses everywhere: every position starts a partial match that never completes.
    text = "法轮大了" * 300_000
    started = time.perf_counter()
    findings = MATCHER.scan(text)
    elapsed = time.perf_counter() - started
    assert len(text) > 1_000_000
    assert {f.rule for f in findings} == {"e6"} and len(findings) == 300_000
    assert elapsed < 30


def test_variants_of_a_chinese_term() -> None:
    assert [(v, f) for v, f, _, _ in term_variants("法轮大法")] == [
        ("term", "法轮大法"),
        ("pinyin", "falundafa"),
        ("initials", "fldf"),
    ]
    assert [v for v, _, _, _ in term_variants("六四")] == ["term", "pinyin"]  # no two-letter initials
    assert [v for v, _, _, _ in term_variants("制造炸")] == ["term", "pinyin"]  # nor three-letter ones


def test_latin_matches_split_only_at_the_terms_own_breaks() -> None:
    assert [f.rule for f in MATCHER.scan("b o m b r e c i p e")] == ["e3"]
    assert [f.rule for f in MATCHER.scan("bomb -- recipe")] == ["e3"]
    assert MATCHER.scan("bo mb recipe") == []
    assert {f.rule for f in MATCHER.scan("falun dafa")} == {"e1"}  # split at syllables
    # Short pinyin must show its syllables: "falun" alone could be an English-like word.
    assert [f.rule for f in MATCHER.scan("fa lun")] == ["e6"]
    assert MATCHER.scan("falun") == []


def test_collapsed_repeats_never_widen_a_term() -> None:
    doubled = LexiconMatcher(
        [LexiconEntry("d", "term", "google", "A.1.8"), LexiconEntry("h", "term", "哈哈", "A.1.8")]
    )
    assert [f.rule for f in doubled.scan("gooogle")] == ["d"]
    assert doubled.scan("gogle") == []
    assert doubled.scan("哈") == [] and [f.rule for f in doubled.scan("哈 哈 哈")] == ["h"]
    assert MATCHER.scan("fal und afa") == []


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab 中文,.-\u200b", max_size=30),
    st.lists(st.sampled_from([" ", "-", "\u200b", "*", "。"]), max_size=6),
    st.text(alphabet="ab 中文,.", max_size=30),
)
def test_dsp10_match_spans_always_point_into_the_original_text(
    before: str, noise: list[str], after: str
) -> None:
    chars = list("制造炸弹")
    disguised = (
        "".join(c + (noise[i] if i < len(noise) else "") for i, c in enumerate(chars[:-1])) + chars[-1]
    )
    text = before + disguised + after
    findings = [f for f in MATCHER.scan(text) if f.rule == "e2"]
    assert findings
    a, b = findings[0].span or (0, 0)
    assert normalize(text[a:b]).text == normalize("制造炸弹").text
    assert a <= len(before) and b >= len(before) + len(disguised) - 0


def test_normalisation_maps_every_character_back() -> None:
    text = "Ｆo  o\u200b!!Bar"
    norm = normalize(text)
    assert norm.text == "fobar"
    assert [text[a:b] for a, b in zip(norm.starts, norm.ends, strict=True)] == ["Ｆ", "o  o", "B", "a", "r"]
