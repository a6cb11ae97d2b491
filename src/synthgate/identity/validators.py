"""Format and check-character validation of Chinese identifiers (DSP-9, GB-PC).

These checks prove that an identifier is well formed, not that it belongs to the person or
organisation presenting it; real-identity verification (DSP-9) layers a verifier on top.

- Unified Social Credit Code (USCC), GB 32100-2015: 17 characters + a mod-31 check character.
- Resident identity number, GB 11643-1999: 17 digits + a mod-11 check character (0-9 or X),
  with a province code and a birth date inside.
- Mainland mobile numbers, returned in E.164 form.
- The 27-character provider code of GB 45438-2025 (Annex E), which embeds a USCC.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

__all__ = [
    "RESIDENT_ID_PROVINCE_CODES",
    "RESIDENT_ID_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_WEIGHTS",
    "InvalidIdentifier",
    "ProviderCode",
    "Reason",
    "Role",
    "make_provider_code",
    "parse_provider_code",
    "random_resident_id",
    "random_uscc",
    "resident_id_check_char",
    "uscc_check_char",
    "validate_cn_mobile",
    "validate_resident_id",
    "validate_uscc",
]

Reason = Literal["type", "length", "character", "check", "region", "date", "prefix", "format", "unsupported"]
Role = Literal["generation", "propagation"]

USCC_KIND = "unified social credit code"
RESIDENT_ID_KIND = "resident ID number"
MOBILE_KIND = "mobile number"
PROVIDER_CODE_KIND = "provider code"


class InvalidIdentifier(ValueError):
    """An identifier failed validation.

    ``kind`` names the identifier, ``reason`` is a machine-readable category and ``detail`` the
    human explanation; ``str(exc)`` combines them ("invalid resident ID number: ...").
    """

    def __init__(self, kind: str, reason: Reason, detail: str) -> None:
        super().__init__(f"invalid {kind}: {detail}")
        self.kind = kind
        self.reason: Reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[InvalidIdentifier], tuple[str, Reason, str]]:
        # The default reduce would call __init__ with the single formatted message.
        return (type(self), (self.kind, self.reason, self.detail))


def _normalise(value: object, kind: str, *, upper: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, "type", f"expected a str, got {type(value).__name__}")
    # NFKC folds full-width input (common with Chinese input methods) to ASCII: "９１" -> "91".
    folded = unicodedata.normalize("NFKC", value).strip()
    return folded.upper() if upper else folded


def _describe(char: str) -> str:
    return repr(char) if char.isprintable() else f"U+{ord(char):04X}"


# --- Unified Social Credit Code (GB 32100-2015) ---------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
# The published weights are 3**i mod 31 for positions 1..17.
USCC_WEIGHTS: tuple[int, ...] = tuple(pow(3, i, 31) for i in range(17))
USCC_LENGTH = 18


def _uscc_check(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _check_uscc(code: str, kind: str, offset: int = 0, *, with_check: bool = True) -> None:
    """Raise unless ``code`` (already normalised) is a well-formed USCC.

    ``offset`` shifts reported positions when the USCC is embedded in a longer code.
    """
    expected_length = USCC_LENGTH if with_check else USCC_LENGTH - 1
    if len(code) != expected_length:
        what = "USCC" if with_check else "USCC body"
        raise InvalidIdentifier(
            kind, "length", f"{what} must be {expected_length} characters, got {len(code)}"
        )
    for i, c in enumerate(code):
        if c not in _USCC_VALUE:
            raise InvalidIdentifier(
                kind,
                "character",
                f"character {_describe(c)} at position {offset + i + 1} is not allowed "
                "(USCC characters are 0-9 and A-Z except I, O, S, V, Z)",
            )
    if with_check:
        expected = _uscc_check(code[:17])
        if code[17] != expected:
            raise InvalidIdentifier(
                kind,
                "check",
                f"check character at position {offset + 18} should be {expected!r}, got {code[17]!r}",
            )


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC."""
    body = _normalise(first17, USCC_KIND)
    _check_uscc(body, USCC_KIND, with_check=False)
    return _uscc_check(body)


def validate_uscc(code: str) -> str:
    """Return the normalised (stripped, upper-case) USCC or raise :class:`InvalidIdentifier`."""
    normalised = _normalise(code, USCC_KIND)
    _check_uscc(normalised, USCC_KIND)
    return normalised


def random_uscc(rng: random.Random) -> str:
    """A random USCC with a correct check character (for tests and fixtures)."""
    body = "".join(rng.choice(USCC_ALPHABET) for _ in range(17))
    return body + _uscc_check(body)


# --- Resident identity number (GB 11643-1999) -----------------------------------------------------

# 2**(17-i) mod 11 for positions 1..17: 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2.
RESIDENT_ID_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
RESIDENT_ID_PROVINCE_CODES: frozenset[str] = frozenset(
    f"{n:02d}"
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
        91,
    )
)
_DIGITS = frozenset("0123456789")
# Birth dates are Beijing calendar dates; a server on UTC must not reject a child born "tomorrow".
_CHINA_TZ = timezone(timedelta(hours=8), "CST")
_EARLIEST_BIRTH_YEAR = 1900


def _china_today() -> date:
    return datetime.now(_CHINA_TZ).date()


def _resident_id_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def _check_resident_digits(body: str) -> None:
    for i, c in enumerate(body):
        if c not in _DIGITS:
            raise InvalidIdentifier(
                RESIDENT_ID_KIND,
                "character",
                f"character {_describe(c)} at position {i + 1} is not allowed (positions 1-17 are digits)",
            )


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character ('0'-'9' or 'X') for the first 17 digits."""
    body = _normalise(first17, RESIDENT_ID_KIND)
    if len(body) != 17:
        raise InvalidIdentifier(RESIDENT_ID_KIND, "length", f"expected 17 digits, got {len(body)}")
    _check_resident_digits(body)
    return _resident_id_check(body)


def validate_resident_id(number: str, *, today: date | None = None) -> str:
    """Return the normalised 18-character resident ID number or raise :class:`InvalidIdentifier`.

    Checks length, characters, province code, birth date (a real date, year >= 1900, not after
    ``today``, which defaults to today's date in China) and the check character. A lower-case
    ``x`` is accepted and returned upper-case.
    """
    normalised = _normalise(number, RESIDENT_ID_KIND)
    if len(normalised) != 18:
        hint = " (15-digit first-generation numbers are no longer valid)" if len(normalised) == 15 else ""
        raise InvalidIdentifier(
            RESIDENT_ID_KIND, "length", f"expected 18 characters, got {len(normalised)}{hint}"
        )
    body, check = normalised[:17], normalised[17]
    _check_resident_digits(body)
    if check not in _DIGITS and check != "X":
        raise InvalidIdentifier(
            RESIDENT_ID_KIND,
            "character",
            f"character {_describe(check)} at position 18 is not allowed (the check character is 0-9 or X)",
        )
    if body[:2] not in RESIDENT_ID_PROVINCE_CODES:
        raise InvalidIdentifier(RESIDENT_ID_KIND, "region", f"{body[:2]!r} is not a province code")
    _check_birth_date(body[6:14], today if today is not None else _china_today())
    expected = _resident_id_check(body)
    if check != expected:
        raise InvalidIdentifier(
            RESIDENT_ID_KIND, "check", f"check character at position 18 should be {expected!r}, got {check!r}"
        )
    return normalised


def _check_birth_date(yyyymmdd: str, today: date) -> None:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidIdentifier(
            RESIDENT_ID_KIND, "date", f"birth date {yyyymmdd} (positions 7-14) is not a calendar date"
        ) from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidIdentifier(
            RESIDENT_ID_KIND, "date", f"birth date {born.isoformat()} is before {_EARLIEST_BIRTH_YEAR}"
        )
    if born > today:
        raise InvalidIdentifier(
            RESIDENT_ID_KIND, "date", f"birth date {born.isoformat()} is in the future (today is {today})"
        )


def random_resident_id(rng: random.Random, *, today: date | None = None) -> str:
    """A random resident ID number that passes :func:`validate_resident_id` (for tests and fixtures)."""
    end = today if today is not None else _china_today()
    start = date(_EARLIEST_BIRTH_YEAR, 1, 1)
    born = start + timedelta(days=rng.randrange((end - start).days + 1))
    province = rng.choice(sorted(RESIDENT_ID_PROVINCE_CODES))
    area = f"{rng.randrange(10000):04d}"
    sequence = f"{rng.randrange(1000):03d}"
    body = f"{province}{area}{born:%Y%m%d}{sequence}"
    return body + _resident_id_check(body)


# --- Mainland mobile numbers --------------------------------------------------------------------

_MOBILE_SEPARATORS = re.compile(r"[\s\-]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)


def validate_cn_mobile(number: str) -> str:
    """Return a mainland China mobile number as E.164 (``+861XXXXXXXXXX``) or raise.

    Accepts an optional ``+86`` / ``0086`` / ``86`` prefix; spaces and dashes are ignored.
    """
    compact = _MOBILE_SEPARATORS.sub("", _normalise(number, MOBILE_KIND, upper=False))
    if compact.startswith("+86"):
        national = compact[3:]
    elif compact.startswith("0086"):
        national = compact[4:]
    elif compact.startswith("86") and len(compact) == 13:
        national = compact[2:]
    elif compact.startswith("+"):
        raise InvalidIdentifier(MOBILE_KIND, "prefix", "only mainland China (+86) numbers are supported")
    else:
        national = compact
    for c in national:
        if c not in _DIGITS:
            raise InvalidIdentifier(
                MOBILE_KIND, "character", f"character {_describe(c)} is not allowed (expected digits)"
            )
    if len(national) != 11:
        raise InvalidIdentifier(MOBILE_KIND, "length", f"expected 11 digits, got {len(national)}")
    if not _MOBILE.fullmatch(national):
        raise InvalidIdentifier(
            MOBILE_KIND, "prefix", f"mainland mobile numbers start with 13-19, got {national[:2]!r}"
        )
    return "+86" + national


# --- GB 45438-2025 provider code (GB-PC) ------------------------------------------------------------

PROVIDER_CODE_LENGTH = 27
PROVIDER_CODE_FORMAT = "00"
_SUBJECT_ORGANISATION = "1"
_BINDING_USCC = "1"
_UNUSED_EXTENSION = "00000"
_ROLE_DIGITS: dict[Role, str] = {"generation": "1", "propagation": "2"}
_DIGIT_ROLES: dict[str, Role] = {d: r for r, d in _ROLE_DIGITS.items()}
_APP_CODE = re.compile(r"[0-9A-Z]{4}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ProviderCode:
    """A parsed 27-character provider code: ``00`` + ``11`` + USCC + service extension.

    ``role`` and ``app_code`` are both None when the extension is unused (``00000``).
    Construction validates every field, so an instance always renders a valid :attr:`code`.
    """

    format: str
    subject_type: str
    binding: str
    uscc: str
    role: Role | None
    app_code: str | None

    def __post_init__(self) -> None:
        kind = PROVIDER_CODE_KIND
        if self.format != PROVIDER_CODE_FORMAT:
            raise InvalidIdentifier(
                kind, "format", f"format (positions 1-2) must be '00', got {self.format!r}"
            )
        if self.subject_type != _SUBJECT_ORGANISATION or self.binding != _BINDING_USCC:
            raise InvalidIdentifier(
                kind,
                "unsupported",
                f"subject code starts with {self.subject_type + self.binding!r} (positions 3-4); "
                "only organisation subjects bound to a USCC (11) are supported",
            )
        _check_uscc(self.uscc, kind, offset=4)
        if self.role is None:
            if self.app_code is not None:
                raise InvalidIdentifier(
                    kind, "format", "an app code needs a role (generation or propagation)"
                )
            return
        if self.role not in _ROLE_DIGITS:
            raise InvalidIdentifier(
                kind, "format", f"role must be 'generation' or 'propagation', got {self.role!r}"
            )
        if self.app_code is None or not _APP_CODE.fullmatch(self.app_code):
            raise InvalidIdentifier(
                kind,
                "character",
                f"model/app code (positions 24-27) must be 4 characters 0-9 or A-Z, got {self.app_code!r}",
            )

    @property
    def extension(self) -> str:
        """The 5-character service extension."""
        if self.role is None:
            return _UNUSED_EXTENSION
        return _ROLE_DIGITS[self.role] + (self.app_code or "")

    @property
    def code(self) -> str:
        return f"{self.format}{self.subject_type}{self.binding}{self.uscc}{self.extension}"

    def __str__(self) -> str:
        return self.code


def parse_provider_code(code: str) -> ProviderCode:
    """Parse and validate a GB 45438 provider code; input is stripped and upper-cased first."""
    kind = PROVIDER_CODE_KIND
    normalised = _normalise(code, kind)
    if len(normalised) != PROVIDER_CODE_LENGTH:
        raise InvalidIdentifier(
            kind, "length", f"expected {PROVIDER_CODE_LENGTH} characters, got {len(normalised)}"
        )
    extension = normalised[22:]
    role: Role | None
    app_code: str | None
    if extension[0] in _DIGIT_ROLES:
        role, app_code = _DIGIT_ROLES[extension[0]], extension[1:]
    elif extension == _UNUSED_EXTENSION:
        role, app_code = None, None
    elif extension[0] == "0":
        raise InvalidIdentifier(
            kind, "format", f"an unused service extension must be '00000', got {extension!r}"
        )
    else:
        raise InvalidIdentifier(
            kind,
            "format",
            f"service extension must start with 1 (generation) or 2 (propagation) at position 23, "
            f"got {extension[0]!r}",
        )
    return ProviderCode(
        format=normalised[:2],
        subject_type=normalised[2],
        binding=normalised[3],
        uscc=normalised[4:22],
        role=role,
        app_code=app_code,
    )


def make_provider_code(uscc: str, role: Role | None = "generation", app_code: str | None = "0000") -> str:
    """Build the provider code for an organisation; ``role=None`` gives the unused extension ``00000``."""
    if role is None and app_code not in (None, "0000"):
        raise InvalidIdentifier(
            PROVIDER_CODE_KIND, "format", "an app code needs a role (generation or propagation)"
        )
    if app_code is not None and not isinstance(app_code, str):
        raise InvalidIdentifier(
            PROVIDER_CODE_KIND, "type", f"app code: expected a str, got {type(app_code).__name__}"
        )
    return ProviderCode(
        format=PROVIDER_CODE_FORMAT,
        subject_type=_SUBJECT_ORGANISATION,
        binding=_BINDING_USCC,
        uscc=validate_uscc(uscc),
        role=role,
        app_code=None if role is None else (app_code.upper() if app_code is not None else None),
    ).code
