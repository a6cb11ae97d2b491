"""DSP-9 identifier checks (USCC, resident ID, mobile) and the GB-PC provider code."""

from __future__ import annotations

import pickle
import random
import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthgate.identity.validators import (
    RESIDENT_ID_PROVINCE_CODES,
    RESIDENT_ID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    InvalidIdentifier,
    ProviderCode,
    make_provider_code,
    parse_provider_code,
    random_resident_id,
    random_uscc,
    resident_id_check_char,
    uscc_check_char,
    validate_cn_mobile,
    validate_resident_id,
    validate_uscc,
)

# Real codes whose check characters were recomputed here; each also passes the GB 11714 check of
# the organisation code embedded at positions 9-17, which a made-up string passes 1 time in 11.
TENCENT = "91440300708461136T"  # Shenzhen Tencent Computer Systems Co., Ltd.
KNOWN_VALID_USCC = [TENCENT, "91350100M000100Y43", "914403001922038216"]  # last: Huawei Technologies

# The example number printed in GB 11643-1999 itself.
STANDARD_RESIDENT_ID = "11010519491231002X"
TODAY = date(2025, 6, 1)

EXAMPLE_PROVIDER_CODE = "001191440300708461136T1XGW3"

randoms = st.randoms(use_true_random=False)
# Characters the normaliser cannot turn into a valid one (so a substitution always changes the value).
FOREIGN_CHARS = "IOSVZ*-"


def _resident_id(first17_without_check: str) -> str:
    return first17_without_check + resident_id_check_char(first17_without_check)


def _uscc(body: str) -> str:
    return body + uscc_check_char(body)


# --- USCC (DSP-9 organisations, GB 32100) ---------------------------------------------------------


def test_dsp9_uscc_weights_match_published_table() -> None:
    assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(USCC_ALPHABET) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


@pytest.mark.parametrize("code", KNOWN_VALID_USCC)
def test_dsp9_uscc_known_valid(code: str) -> None:
    assert validate_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17]


def test_dsp9_uscc_check_char_known() -> None:
    assert uscc_check_char("91440300708461136") == "T"
    # A check sum of 0 mod 31 maps to check character '0', not to 31.
    assert uscc_check_char("0" * 17) == "0"


def test_dsp9_uscc_wrong_check_char_names_expected() -> None:
    # Circulates as a "valid" example but its check character is wrong.
    with pytest.raises(InvalidIdentifier, match=r"position 18 should be '8', got '6'") as info:
        validate_uscc("911100001011280046")
    assert info.value.reason == "check"
    assert info.value.kind == "unified social credit code"


@pytest.mark.parametrize("code", KNOWN_VALID_USCC)
def test_dsp9_uscc_every_single_substitution_rejected(code: str) -> None:
    for i, original in enumerate(code):
        for c in USCC_ALPHABET + FOREIGN_CHARS:
            if c == original:
                continue
            mutated = code[:i] + c + code[i + 1 :]
            with pytest.raises(InvalidIdentifier):
                validate_uscc(mutated)
            if i < 17 and c in USCC_ALPHABET:
                # The check character alone catches it: 31 is prime and no weight is 0 mod 31.
                assert uscc_check_char(mutated[:17]) != code[17]


def test_dsp9_uscc_normalises_case_and_whitespace() -> None:
    assert validate_uscc(f"  {TENCENT.lower()}\n") == TENCENT
    assert validate_uscc(f"\u3000{TENCENT}\u3000") == TENCENT  # ideographic spaces
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in TENCENT)
    assert validate_uscc(full_width) == TENCENT


@pytest.mark.parametrize("code", ["", TENCENT[:17], TENCENT + "0", TENCENT * 2])
def test_dsp9_uscc_bad_length(code: str) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"must be 18 characters, got {len(code)}") as info:
        validate_uscc(code)
    assert info.value.reason == "length"


@pytest.mark.parametrize(
    ("position", "char"), [(1, "I"), (9, "O"), (12, "S"), (17, "V"), (18, "Z"), (5, "#")]
)
def test_dsp9_uscc_bad_character_names_position(position: int, char: str) -> None:
    code = TENCENT[: position - 1] + char + TENCENT[position:]
    with pytest.raises(
        InvalidIdentifier, match=re.escape(f"character '{char}' at position {position}")
    ) as info:
        validate_uscc(code)
    assert info.value.reason == "character"


def test_dsp9_uscc_internal_space_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="position 9"):
        validate_uscc(TENCENT[:8] + " " + TENCENT[9:])


@pytest.mark.parametrize("value", [None, 91440300708461136, b"91440300708461136T", ["9"]])
def test_dsp9_uscc_wrong_type(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"expected a str, got {type(value).__name__}") as info:
        validate_uscc(value)  # type: ignore[arg-type]
    assert info.value.reason == "type"
    with pytest.raises(InvalidIdentifier, match="expected a str"):
        uscc_check_char(value)  # type: ignore[arg-type]


def test_dsp9_uscc_check_char_rejects_bad_body() -> None:
    with pytest.raises(InvalidIdentifier, match="must be 17 characters, got 18"):
        uscc_check_char(TENCENT)
    with pytest.raises(InvalidIdentifier, match="'I' at position 3"):
        uscc_check_char("91I403007084611361"[:17])


@given(randoms)
def test_dsp9_uscc_generated_codes_round_trip(rng: random.Random) -> None:
    code = random_uscc(rng)
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code


@given(randoms, st.sampled_from(USCC_ALPHABET))
def test_dsp9_uscc_changed_check_char_rejected(rng: random.Random, replacement: str) -> None:
    code = random_uscc(rng)
    if replacement == code[17]:
        replacement = USCC_ALPHABET[(USCC_ALPHABET.index(replacement) + 1) % 31]
    with pytest.raises(InvalidIdentifier) as info:
        validate_uscc(code[:17] + replacement)
    assert info.value.reason == "check"


@given(randoms, st.integers(min_value=0, max_value=15))
def test_dsp9_uscc_adjacent_transposition_rejected(rng: random.Random, i: int) -> None:
    code = random_uscc(rng)
    if code[i] == code[i + 1]:
        return
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    with pytest.raises(InvalidIdentifier, match="check character"):
        validate_uscc(swapped)


# --- Resident ID number (DSP-9 individuals, GB 11643) ---------------------------------------------


def test_dsp9_resident_id_weights_match_published_table() -> None:
    assert RESIDENT_ID_WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def test_dsp9_resident_id_standard_example_valid() -> None:
    assert validate_resident_id(STANDARD_RESIDENT_ID, today=TODAY) == STANDARD_RESIDENT_ID
    assert resident_id_check_char(STANDARD_RESIDENT_ID[:17]) == "X"


def test_dsp9_resident_id_lower_case_x_normalised() -> None:
    assert validate_resident_id(" 11010519491231002x\t", today=TODAY) == STANDARD_RESIDENT_ID


def test_dsp9_resident_id_check_values_cover_zero_and_x() -> None:
    checks = {resident_id_check_char(f"1101051949123{n:04d}") for n in range(200)}
    assert checks == set("0123456789X")


def test_dsp9_resident_id_every_single_substitution_rejected() -> None:
    number = STANDARD_RESIDENT_ID
    for i, original in enumerate(number):
        for c in "0123456789X":
            if c == original:
                continue
            mutated = number[:i] + c + number[i + 1 :]
            with pytest.raises(InvalidIdentifier):
                validate_resident_id(mutated, today=TODAY)
            if i < 17 and c != "X":
                # 11 is prime and no weight is 0 mod 11, so the check character differs.
                assert resident_id_check_char(mutated[:17]) != number[17]


def test_dsp9_resident_id_wrong_check_char_names_expected() -> None:
    with pytest.raises(InvalidIdentifier, match=r"should be 'X', got '3'") as info:
        validate_resident_id(STANDARD_RESIDENT_ID[:17] + "3", today=TODAY)
    assert info.value.reason == "check"


def test_dsp9_resident_id_feb_30_rejected() -> None:
    number = _resident_id("11010519900230123")
    with pytest.raises(InvalidIdentifier, match=r"19900230 .* not a calendar date") as info:
        validate_resident_id(number, today=TODAY)
    assert info.value.reason == "date"


def test_dsp9_resident_id_leap_days() -> None:
    assert validate_resident_id(_resident_id("11010520000229123"), today=TODAY)
    with pytest.raises(InvalidIdentifier, match="not a calendar date"):
        validate_resident_id(_resident_id("11010519000229123"), today=TODAY)  # 1900 is not a leap year
    with pytest.raises(InvalidIdentifier, match="not a calendar date"):
        validate_resident_id(_resident_id("11010519901301123"), today=TODAY)  # month 13


def test_dsp9_resident_id_future_birth_date_rejected() -> None:
    tomorrow = TODAY + timedelta(days=1)
    number = _resident_id(f"110105{tomorrow:%Y%m%d}123")
    with pytest.raises(InvalidIdentifier, match="in the future") as info:
        validate_resident_id(number, today=TODAY)
    assert info.value.reason == "date"
    born_today = _resident_id(f"110105{TODAY:%Y%m%d}123")
    assert validate_resident_id(born_today, today=TODAY) == born_today


def test_dsp9_resident_id_future_birth_date_rejected_by_default_clock() -> None:
    far_future = _resident_id("11010521000101123")
    with pytest.raises(InvalidIdentifier, match="in the future"):
        validate_resident_id(far_future)


def test_dsp9_resident_id_before_1900_rejected() -> None:
    # The other example in GB 11643-1999: its check character is right, its 1880 birth year is not.
    number = "440524188001010014"
    assert resident_id_check_char(number[:17]) == number[17]
    with pytest.raises(InvalidIdentifier, match="1880-01-01 is before 1900"):
        validate_resident_id(number, today=TODAY)


@pytest.mark.parametrize(
    "province", ["00", "10", "16", "20", "24", "30", "38", "47", "55", "66", "72", "84", "99"]
)
def test_dsp9_resident_id_bad_province_rejected(province: str) -> None:
    number = _resident_id(f"{province}010519491231002")
    with pytest.raises(InvalidIdentifier, match=rf"'{province}' is not a province code") as info:
        validate_resident_id(number, today=TODAY)
    assert info.value.reason == "region"


def test_dsp9_resident_id_province_codes() -> None:
    expected = {
        *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
        *range(50, 55), *range(61, 66), 71, 81, 82, 83, 91,
    }  # fmt: skip
    assert {int(p) for p in RESIDENT_ID_PROVINCE_CODES} == expected


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("", "expected 18 characters, got 0"),
        ("11010519491231002", "expected 18 characters, got 17"),
        ("11010519491231002X0", "expected 18 characters, got 19"),
        ("110105491231002", "15-digit first-generation"),
    ],
)
def test_dsp9_resident_id_bad_length(number: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message) as info:
        validate_resident_id(number, today=TODAY)
    assert info.value.reason == "length"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("1101051949123100XX", "'X' at position 17"),
        ("A1010519491231002X", "'A' at position 1"),
        ("11010519491231002Y", "'Y' at position 18"),
        ("110105 9491231002X", "' ' at position 7"),
    ],
)
def test_dsp9_resident_id_bad_characters(number: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message) as info:
        validate_resident_id(number, today=TODAY)
    assert info.value.reason == "character"


@pytest.mark.parametrize("value", [None, 110105194912310020, b"11010519491231002X"])
def test_dsp9_resident_id_wrong_type(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"expected a str, got {type(value).__name__}"):
        validate_resident_id(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="expected a str"):
        resident_id_check_char(value)  # type: ignore[arg-type]


def test_dsp9_resident_id_check_char_rejects_bad_body() -> None:
    with pytest.raises(InvalidIdentifier, match="expected 17 digits, got 18"):
        resident_id_check_char(STANDARD_RESIDENT_ID)
    with pytest.raises(InvalidIdentifier, match="'X' at position 17"):
        resident_id_check_char("1101051949123100X")


@given(randoms)
def test_dsp9_resident_id_generated_round_trip(rng: random.Random) -> None:
    number = random_resident_id(rng, today=TODAY)
    assert validate_resident_id(number, today=TODAY) == number
    assert validate_resident_id(number.lower(), today=TODAY) == number
    assert validate_resident_id(random_resident_id(rng)) is not None  # default clock


@given(randoms, st.sampled_from("0123456789X"))
def test_dsp9_resident_id_changed_check_char_rejected(rng: random.Random, replacement: str) -> None:
    number = random_resident_id(rng, today=TODAY)
    if replacement == number[17]:
        return
    with pytest.raises(InvalidIdentifier) as info:
        validate_resident_id(number[:17] + replacement, today=TODAY)
    assert info.value.reason == "check"


# --- Mainland mobile numbers (DSP-9) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "008613800138000",
        "0086-138-0013-8000",
        "8613800138000",
        "86 138-0013-8000",
        " 138 0013 8000 ",
        "１３８００１３８０００",  # full-width digits
    ],
)
def test_dsp9_mobile_accepted_forms(number: str) -> None:
    assert validate_cn_mobile(number) == "+8613800138000"


@pytest.mark.parametrize("second", "3456789")
def test_dsp9_mobile_all_valid_second_digits(second: str) -> None:
    assert validate_cn_mobile(f"1{second}012345678") == f"+861{second}012345678"


@pytest.mark.parametrize(
    ("number", "reason", "message"),
    [
        ("12800138000", "prefix", "start with 13-19, got '12'"),
        ("23800138000", "prefix", "start with 13-19, got '23'"),
        ("1380013800", "length", "expected 11 digits, got 10"),
        ("138001380000", "length", "expected 11 digits, got 12"),
        ("+86", "length", "expected 11 digits, got 0"),
        ("", "length", "expected 11 digits, got 0"),
        ("+1 415 555 2671", "prefix", r"only mainland China \(\+86\)"),
        ("+852 9123 4567", "prefix", r"only mainland China \(\+86\)"),
        ("138OO138000", "character", "'O' is not allowed"),
        ("(138)00138000", "character", r"'\(' is not allowed"),
        ("+86+8613800138000", "character", r"'\+' is not allowed"),
    ],
)
def test_dsp9_mobile_rejected(number: str, reason: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message) as info:
        validate_cn_mobile(number)
    assert info.value.reason == reason
    assert info.value.kind == "mobile number"


@pytest.mark.parametrize("value", [None, 13800138000])
def test_dsp9_mobile_wrong_type(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"expected a str, got {type(value).__name__}"):
        validate_cn_mobile(value)  # type: ignore[arg-type]


@given(st.from_regex(r"\A1[3-9][0-9]{9}\Z"), st.sampled_from(["", "+86", "0086", "86", "+86 "]))
def test_dsp9_mobile_round_trip(national: str, prefix: str) -> None:
    assert validate_cn_mobile(prefix + national) == "+86" + national
    dashed = f"{national[:3]}-{national[3:7]}-{national[7:]}"
    assert validate_cn_mobile(prefix + dashed) == "+86" + national


# --- GB 45438 provider code (GB-PC) --------------------------------------------------------------


def test_gbpc_provider_code_example_parses() -> None:
    parsed = parse_provider_code(EXAMPLE_PROVIDER_CODE)
    assert parsed == ProviderCode(
        format="00", subject_type="1", binding="1", uscc=TENCENT, role="generation", app_code="XGW3"
    )
    assert parsed.code == EXAMPLE_PROVIDER_CODE
    assert str(parsed) == EXAMPLE_PROVIDER_CODE
    assert parsed.extension == "1XGW3"


def test_gbpc_provider_code_make_matches_example() -> None:
    assert make_provider_code(TENCENT, "generation", "XGW3") == EXAMPLE_PROVIDER_CODE
    assert make_provider_code(TENCENT.lower(), "generation", "xgw3") == EXAMPLE_PROVIDER_CODE


def test_gbpc_provider_code_defaults_and_unused_extension() -> None:
    assert make_provider_code(TENCENT) == f"0011{TENCENT}10000"
    assert make_provider_code(TENCENT, None, None) == f"0011{TENCENT}00000"
    assert make_provider_code(TENCENT, role=None) == f"0011{TENCENT}00000"
    unused = parse_provider_code(f"0011{TENCENT}00000")
    assert (unused.role, unused.app_code) == (None, None)


def test_gbpc_provider_code_propagation() -> None:
    parsed = parse_provider_code(f"0011{TENCENT}2A1B2")
    assert (parsed.role, parsed.app_code) == ("propagation", "A1B2")


def test_gbpc_provider_code_normalises_input() -> None:
    assert parse_provider_code(f"  {EXAMPLE_PROVIDER_CODE.lower()} ").code == EXAMPLE_PROVIDER_CODE


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (EXAMPLE_PROVIDER_CODE[:-1], "length", "expected 27 characters, got 26"),
        (EXAMPLE_PROVIDER_CODE + "0", "length", "expected 27 characters, got 28"),
        ("01" + EXAMPLE_PROVIDER_CODE[2:], "format", r"format \(positions 1-2\) must be '00', got '01'"),
        (
            "0021" + EXAMPLE_PROVIDER_CODE[4:],
            "unsupported",
            r"only organisation subjects bound to a USCC \(11\)",
        ),
        ("0012" + EXAMPLE_PROVIDER_CODE[4:], "unsupported", "starts with '12'"),
        (EXAMPLE_PROVIDER_CODE[:21] + "X" + EXAMPLE_PROVIDER_CODE[22:], "check", "position 22 should be 'T'"),
        (EXAMPLE_PROVIDER_CODE[:10] + "I" + EXAMPLE_PROVIDER_CODE[11:], "character", "'I' at position 11"),
        (EXAMPLE_PROVIDER_CODE[:22] + "3XGW3", "format", "must start with 1 .* or 2 .* at position 23"),
        (EXAMPLE_PROVIDER_CODE[:22] + "0XGW3", "format", "unused service extension must be '00000'"),
        (EXAMPLE_PROVIDER_CODE[:22] + "1XG-3", "character", "must be 4 characters 0-9 or A-Z, got 'XG-3'"),
    ],
)
def test_gbpc_provider_code_rejected(code: str, reason: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message) as info:
        parse_provider_code(code)
    assert info.value.reason == reason
    assert info.value.kind == "provider code"


def test_gbpc_provider_code_every_uscc_substitution_rejected() -> None:
    for i in range(4, 22):
        for c in USCC_ALPHABET:
            if c == EXAMPLE_PROVIDER_CODE[i]:
                continue
            with pytest.raises(InvalidIdentifier, match="check character"):
                parse_provider_code(EXAMPLE_PROVIDER_CODE[:i] + c + EXAMPLE_PROVIDER_CODE[i + 1 :])


def test_gbpc_provider_code_wrong_type() -> None:
    with pytest.raises(InvalidIdentifier, match="expected a str, got NoneType"):
        parse_provider_code(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="app code: expected a str, got int"):
        make_provider_code(TENCENT, "generation", 1234)  # type: ignore[arg-type]


def test_gbpc_provider_code_make_rejects_bad_parts() -> None:
    with pytest.raises(InvalidIdentifier, match="unified social credit code: check character"):
        make_provider_code(TENCENT[:17] + "0")
    with pytest.raises(InvalidIdentifier, match="role must be 'generation' or 'propagation'"):
        make_provider_code(TENCENT, "training")  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="an app code needs a role"):
        make_provider_code(TENCENT, None, "XGW3")
    with pytest.raises(InvalidIdentifier, match="got 'XGW'"):
        make_provider_code(TENCENT, "generation", "XGW")


def test_gbpc_provider_code_dataclass_validates_and_is_frozen() -> None:
    with pytest.raises(InvalidIdentifier, match="check character"):
        ProviderCode("00", "1", "1", TENCENT[:17] + "0", "generation", "0000")
    parsed = parse_provider_code(EXAMPLE_PROVIDER_CODE)
    with pytest.raises(AttributeError):
        parsed.uscc = "x"  # type: ignore[misc]


@given(
    randoms,
    st.sampled_from(["generation", "propagation", None]),
    st.from_regex(r"\A[0-9A-Z]{4}\Z"),
)
def test_gbpc_provider_code_round_trip(rng: random.Random, role: str | None, app_code: str) -> None:
    uscc = random_uscc(rng)
    code = make_provider_code(uscc, role, None if role is None else app_code)  # type: ignore[arg-type]
    assert len(code) == 27
    parsed = parse_provider_code(code)
    assert (parsed.uscc, parsed.role, parsed.code) == (uscc, role, code)
    assert parsed.app_code == (None if role is None else app_code)


def test_invalid_identifier_pickles() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        validate_uscc("x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.kind, copy.reason, copy.detail, str(copy)) == (
        info.value.kind,
        info.value.reason,
        info.value.detail,
        str(info.value),
    )
    assert isinstance(copy, ValueError)
