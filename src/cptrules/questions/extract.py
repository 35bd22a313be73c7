"""Find procedure codes, malformed code-like tokens and dates of service in a question.

Candidates are whole tokens; whether a candidate is a code is decided by the
category rules (the same ones GetCode uses), so T1015 and 0556T, U0001 and 0001U
are told apart in one place. ICD-10 codes (M81.0), NPIs, phone numbers, money
and claim numbers never have a code's shape at a token boundary.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..limits import DATE_MAX_YEAR, DATE_MIN_YEAR
from .places import PlaceMention

# A token: letters and digits, not part of a decimal ("M81.0"), money ("$12345")
# or a longer identifier. Every quantifier is bounded, so matching is linear.
_TOKEN = re.compile(r"(?<![\w$.])([A-Za-z0-9]{3,10})(?![\w])(?!\.\d)")
_CODE_SHAPE = re.compile(r"^(\d{5}|\d{4}[A-Z]|[A-Z]\d{4})$")
_WITH_MODIFIER = re.compile(r"^(\d{5}|\d{4}[A-Z]|[A-Z]\d{4})([A-Z0-9]{2})$")
_NEAR_CODE = re.compile(r"^(\d{3}[A-Z]|\d{4}[A-Z]{2,3}|\d{5}[A-Z]{1,3}|[A-Z]\d{3}|[A-Z]\d{5})$")
_FOUR_DIGITS = re.compile(r"^\d{4}$")
_GLUED_PREFIX = re.compile(r"^(CPT|HCPCS|CODE)(?=[0-9A-Z]{5}$)")
# A modifier right after a code: joined by a hyphen, or after a space for the priced components.
_AFTER_CODE = re.compile(r"-([A-Za-z0-9]{2})(?![\w])|\s(26|TC|tc)(?![\w])|\s?\((26|TC|tc|53)\)")
# A modifier named in words: "with modifier 53", "mod 26", "modifier -TC".
_NAMED_MODIFIER = re.compile(r"\b(?:modifiers?|modifer|mod)\s{0,3}[-#:]?\s{0,3}([A-Za-z0-9]{2})(?![\w])", re.I)
# Further modifiers listed after a named one: "modifiers 25 and 59", "mod 25, 59 or 76".
_LISTED_MODIFIER = re.compile(r"\s{0,3}(?:,|&|/|\band\b|\bor\b)\s{0,3}(?:(?:and|or)\s{1,3})?-?([A-Za-z0-9]{2})(?![\w])", re.I)
# The components by name, for a question about one code.
_COMPONENT = re.compile(r"\b(professional|technical)\s{1,3}component\b|\bprofessional\s{1,3}(?:part|portion)\b", re.I)
# ICD-10-CM diagnosis codes with their dot (M81.0, E11.9, Z00.00): named, never taken for procedures.
_ICD10 = re.compile(r"(?<![\w.])([A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4})(?![\w.])", re.I)
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_US = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])")
_MONTH_DAY_YEAR = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?\s{1,3}(\d{1,2})(?:st|nd|rd|th)?,?\s{1,3}(\d{4})\b", re.I)
_MONTH_YEAR = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?\s{1,3}(20\d{2})\b", re.I)
_YEAR = re.compile(r"(?<![\w/$.-])(20\d{2})(?![\w/.-])|\b[Cc][Yy][\s-]?(20\d{2})\b")
# The words that introduce a stated date: "on", "for DOS", "with a date of service of", "dated".
_DATE_LEAD = (r"(?:\b(?:on|for|from|in|as\s+of|dated|with\s+an?|of|at)\s+)?"
              r"(?:\b(?:the\s+|a\s+)?(?:dos|d\.o\.s\.?|date\s+of\s+service|service\s+date)\s*[:#-]?\s*"
              r"(?:of\s+|on\s+|is\s+)?)?")


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a question names: codes (normalised, in order), malformed tokens and a date."""

    codes: tuple[str, ...]
    malformed: tuple[str, ...]
    date_of_service: dt.date | None
    date_text: str
    diagnosis_codes: tuple[str, ...] = ()
    unreadable_date: str = ""
    modifiers: tuple[tuple[str, str], ...] = ()  # (code, modifier) as written: 71046-TC, 0509T 26
    place: PlaceMention | None = None  # where the service is done, when the question says
    # Modifiers named for a code that already has one ("99213 modifier 25 and 59"): one modifier
    # per code is answered, the others are named as not answered.
    unanswered_modifiers: tuple[tuple[str, str], ...] = ()


def extract(text: str, is_code: Callable[[str], bool], prefixes: frozenset[str],
            modifiers: frozenset[str], today: dt.date,
            year_cues: tuple[tuple[str, ...], ...] = ()) -> Extraction:
    """Codes, malformed code-like tokens and the date of service a question states. A four-digit
    number from 1900 to 2199 beside a year cue ("the 2100 cf") is a year, not a malformed code."""
    codes: list[str] = []
    malformed: list[str] = []
    words = re.findall(r"[A-Za-z0-9®#]+", text.lower())
    prefixed = {words[i + 1] for i, w in enumerate(words[:-1]) if w.rstrip("®#") in prefixes}
    prefixed |= {words[i - 1] for i, w in enumerate(words[1:], start=1) if w in {"code", "codes"}}
    attached: list[tuple[str, str]] = []
    positions: list[tuple[int, str]] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(1)
        token = _GLUED_PREFIX.sub("", raw.upper())
        if _CODE_SHAPE.match(token):
            if is_code(token):
                codes.append(token)
                after = _AFTER_CODE.match(text, match.end(1))
                modifier = next((g for g in after.groups() if g), "").upper() if after else ""
                if modifier in modifiers:
                    attached.append((token, modifier))
                positions.append((match.start(1), token))
            else:
                malformed.append(token)
            continue
        joined = _WITH_MODIFIER.match(token)
        if joined and joined.group(2) in modifiers and is_code(joined.group(1)):
            codes.append(joined.group(1))
            attached.append((joined.group(1), joined.group(2)))
            positions.append((match.start(1), joined.group(1)))
            continue
        if _NEAR_CODE.match(token) and any(c.isdigit() for c in token):
            malformed.append(token)
        elif _FOUR_DIGITS.match(token) and not token.startswith(("19", "20")) and (
                raw.lower() in prefixed or _standalone(text, match.start(1), match.end(1))) and not (
                token.startswith("21") and _beside(text, match.start(1), match.end(1), year_cues)):
            malformed.append(token)
    named, unanswered = _named_modifiers(text, positions, dict(attached), modifiers)
    attached += named
    dos, date_text, unreadable = read_date(text, today)
    diagnoses = tuple(dict.fromkeys(m.group(1).upper() for m in _ICD10.finditer(text)))
    return Extraction(tuple(dict.fromkeys(codes)), tuple(dict.fromkeys(malformed)), dos, date_text,
                      diagnoses, unreadable, tuple(dict.fromkeys(attached)),
                      unanswered_modifiers=tuple(dict.fromkeys(unanswered)))


def without_date(text: str, extraction: Extraction) -> str:
    """The question without the date it states (read or unreadable) and the words that introduce
    it: a question asking which code to use names the service in its other words, and a date
    ("on 1/15/2026", "for DOS 2/30/2026") only says when the service was done."""
    for said in (extraction.date_text, extraction.unreadable_date):
        if said:
            found = re.search(_DATE_LEAD + r"(?<![\w/.-])" + re.escape(said) + r"(?![\w/-])", text, re.I)
            if found:
                text = (text[:found.start()] + " " + text[found.end():]).strip()
    return text


def _named_modifiers(text: str, positions: list[tuple[int, str]], taken: dict[str, str],
                     modifiers: frozenset[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Modifiers named in words, each for the nearest code before it (else the first code);
    "professional component" is 26 and "technical component" TC when one code is asked about.
    A list after the word ("modifiers 25 and 59") names each. Also the modifiers named for a
    code that already has one, which are not answered."""
    if not positions:
        return [], []
    found: list[tuple[int, str]] = []
    for named in _NAMED_MODIFIER.finditer(text):
        found.append((named.start(), named.group(1).upper()))
        listed = _LISTED_MODIFIER.match(text, named.end())
        while listed:
            found.append((listed.start(1), listed.group(1).upper()))
            listed = _LISTED_MODIFIER.match(text, listed.end())
    if len({code for _, code in positions}) == 1:
        found += [(m.start(), "TC" if (m.group(1) or "").lower() == "technical" else "26")
                  for m in _COMPONENT.finditer(text)]
    attached, unanswered = [], []
    for at, modifier in sorted(found):
        if modifier not in modifiers:
            continue
        before = [code for start, code in positions if start < at]
        code = before[-1] if before else positions[0][1]
        if code not in taken:
            attached.append((code, modifier))
            taken[code] = modifier
        elif taken[code] != modifier:
            unanswered.append((code, modifier))
    return attached, unanswered


_YEAR_REACH = 3  # words between a year and its cue ("2100 medicare pfs conversion factor"), at most


def _beside(text: str, start: int, end: int, cues: tuple[tuple[str, ...], ...]) -> bool:
    """Whether one of the cue phrases ends within a few words before the number or starts
    within a few words after it."""
    if not cues:
        return False
    before = re.findall(r"[a-z0-9]+", text[max(0, start - 120):start].lower())
    after = re.findall(r"[a-z0-9]+", text[end:end + 120].lower())
    for cue in cues:
        size = len(cue)
        if any(tuple(before[len(before) - i - size:len(before) - i]) == cue
               for i in range(min(_YEAR_REACH, len(before) - size) + 1)):
            return True
        if any(tuple(after[i:i + size]) == cue for i in range(_YEAR_REACH + 1)):
            return True
    return False


def _standalone(text: str, start: int, end: int) -> bool:
    """A number set off by spaces or sentence punctuation, not part of a phone, date or amount."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return before in " \t(\"'" and after in " \t?!.)\"'"


def _year_date(year: int, today: dt.date) -> dt.date:
    """A bare year as a date of service: the latest day of it we can speak about."""
    if year < today.year:
        return dt.date(year, 12, 31)
    if year == today.year:
        return today
    return dt.date(year, 1, 1)


def find_date(text: str, today: dt.date) -> tuple[dt.date | None, str]:
    """The first date the question states, most specific form first."""
    day, found, _ = read_date(text, today)
    return day, found


def _in_bounds(day: dt.date) -> dt.date:
    """The date, if its year is one the service answers for (the same bounds as a request's
    date_of_service); a ValueError otherwise, as for a date that is no calendar date."""
    if not DATE_MIN_YEAR <= day.year <= DATE_MAX_YEAR:
        raise ValueError(f"year {day.year} is outside {DATE_MIN_YEAR}-{DATE_MAX_YEAR}")
    return day


def read_date(text: str, today: dt.date) -> tuple[dt.date | None, str, str]:
    """(date, its text, the text of a date-shaped token that is no calendar date or whose year
    is outside the years the service answers for)."""
    unreadable = ""
    for pattern in (_ISO, _US, _MONTH_DAY_YEAR):
        for found in pattern.finditer(text):
            try:
                if pattern is _ISO:
                    y, m, d = (int(g) for g in found.groups())
                elif pattern is _US:
                    m, d, y = (int(g) for g in found.groups())
                    if len(found.group(3)) == 2:  # 3/1/26; a four-digit 0001 stays year 1
                        y += 2000
                else:
                    m = _MONTHS[found.group(1).lower()[:3]]
                    d, y = int(found.group(2)), int(found.group(3))
                return _in_bounds(dt.date(y, m, d)), found.group(0), ""
            except ValueError:
                unreadable = unreadable or found.group(0)
    if unreadable:
        return None, "", unreadable
    found = _MONTH_YEAR.search(text)
    if found:
        return dt.date(int(found.group(2)), _MONTHS[found.group(1).lower()[:3]], 1), found.group(0), ""
    found = _YEAR.search(text)
    if found:
        return _year_date(int(found.group(1) or found.group(2)), today), found.group(0), ""
    return None, "", ""
