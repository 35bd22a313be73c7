"""Find where a question says the service is done: a ZIP code, a locality name, or a state.

A five-digit number is a CPT code unless the question says it is a ZIP code: after "zip",
"zipcode", "zip code" or "postal code"; with a +4 extension (10001-2345); right after a
state ("TX 77030", "Texas 77030"); or as "in 10001" after a code has been named. Names come
from CMS's own locality and state names (Addendum E and the county file), so "Manhattan",
"Houston", "rest of Texas" and "Alabama" (a one-locality state) each name a locality; a
state with several localities ("Texas") is reported as such, so the answer can ask which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

_ZIP_WORD = re.compile(r"\b(?:zip\s*codes?|zipcodes?|zip|postal\s+codes?|locality\s+(?:is|for|of))\s*"
                       r"(?:is|of|:|#|no\.?)?\s*(\d{5})(?:\s*-\s*(\d{4}))?(?!\d)", re.I)
_ZIP_PLUS_FOUR = re.compile(r"(?<![\w-])(\d{5})-(\d{4})(?![\w-])")
_IN_NUMBER = re.compile(r"\bin\s+(\d{5})(?![\w-])", re.I)
# A locality as CMS numbers it: MAC-locality (01112-05), or "MAC 04412 loc 99" / "carrier 09102 locality 04".
_LOCALITY_ID = re.compile(r"(?<![\w-])(\d{5})-(\d{2})(?![\w-])")
_MAC_AND_NUMBER = re.compile(r"\b(?:mac|carrier|contractor)\s*#?\s*(\d{5})\s*,?\s*(?:loc|locality)\s*#?\s*(\d{1,2})\b", re.I)
_FIVE_DIGITS = re.compile(r"\d{5}")
_NUMBER_AFTER = r"[\s,]{1,3}(\d{5})(?:-(\d{4}))?(?![\w-])"
_STATE_ABBREVIATIONS = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT "
                        "NE NV NH NJ NM NY NC ND OH OK OR PA PR RI SC SD TN TX UT VT VA VI WA WV WI WY").split()
_STATE_NAMES = ("alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|district of columbia|"
                "florida|georgia|hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|"
                "massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new hampshire|"
                "new jersey|new mexico|new york|north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|"
                "puerto rico|rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|"
                "washington|west virginia|wisconsin|wyoming")
# A state, then a five-digit number: the number is a ZIP code ("TX 77030", "Texas 77030").
# Abbreviations count only in capitals: "md 99204" is a doctor and a code.
_STATE_ZIP = re.compile(r"(?:\b(?:" + "|".join(_STATE_ABBREVIATIONS) + r")|(?i:\b(?:" + _STATE_NAMES + r")))"
                        + _NUMBER_AFTER)


def find_zip(text: str, codes: tuple[str, ...], is_locality: Callable[[str], bool] | None = None,
             modifiers: frozenset[str] = frozenset()) -> tuple[PlaceMention | None, set[str]]:
    """A ZIP code or a numbered locality the question states, and the five-digit tokens that are
    not codes (ZIP codes, MAC numbers). The wording decides: 01112-05 is a locality after the word
    "locality", or when it is a loaded locality whose number is no modifier (11042-51 is a code)."""
    numbers: set[str] = set()
    mention = None
    if not _FIVE_DIGITS.search(text):  # every form below holds five digits: most questions stop here
        return mention, numbers
    for pattern in (_LOCALITY_ID, _MAC_AND_NUMBER):
        for found in pattern.finditer(text):
            key = f"{found.group(1)}-{int(found.group(2)):02d}"
            said = pattern is _MAC_AND_NUMBER or re.search(r"\b(?:locality|loc)\s*[:#]?\s*$", text[:found.start()], re.I)
            if not said and not (is_locality is not None and is_locality(key) and found.group(2) not in modifiers):
                continue
            numbers.add(found.group(1))
            if mention is None:
                mention = PlaceMention(found.group(0).strip(), locality=key)
    for pattern in (_ZIP_WORD, _ZIP_PLUS_FOUR, _STATE_ZIP):
        for found in pattern.finditer(text):
            digits = found.groups()[-2:]
            numbers.add(digits[0])
            if mention is None:
                mention = PlaceMention(found.group(0).strip(), "-".join(d for d in digits if d))
    upper = text.upper()
    for found in _IN_NUMBER.finditer(text):
        number = found.group(1)
        if any(c != number and 0 <= upper.find(c) < found.start(1) for c in codes):
            numbers.add(number)  # "99213 in 10001": the number after "in" is where, not what
            if mention is None:
                mention = PlaceMention(found.group(0), number)
    return mention, numbers


@dataclass(frozen=True, slots=True)
class PlaceMention:
    """A place named in a question: a ZIP code, a locality (MAC-locality), or a state."""

    text: str
    zip_code: str = ""
    locality: str = ""
    state: str = ""
    state_localities: tuple[str, ...] = ()


_WORD = re.compile(r"[a-z0-9]+")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9+]+", " ", text.lower().replace(".", "")).split())


class PlaceFinder:
    """Aliases of every loaded locality and state, matched longest first."""

    def __init__(self, localities: dict[str, Any], state_names: dict[str, str],
                 counties: dict[str, list[tuple[str, str, str]]] | None = None) -> None:
        """localities: id → object with .name and .state; state_names: full name → two-letter state;
        counties: id → (state, area, counties) rows of CMS's county file."""
        aliases: dict[str, set[str]] = {}
        preferred: dict[str, set[str]] = {}
        for key, loc in localities.items():
            name = loc.name.upper().rstrip("*")
            aliases.setdefault(_norm(name), set()).add(key)
            head, _, tail = name.partition("(")
            for part in re.split(r"[-/]", head):
                part = re.sub(r"^(METROPOLITAN|SUBURBAN) ", "", part.strip())
                if len(part) > 3:
                    aliases.setdefault(_norm(part), set()).add(key)
            for part in re.split(r"[/,]", tail.rstrip(")").replace(" CNTY", "")):
                if len(part.strip()) > 3:
                    preferred.setdefault(_norm(part), set()).add(key)
        self.by_state: dict[str, tuple[str, ...]] = {}
        for key, loc in sorted(localities.items()):
            self.by_state[loc.state] = (*self.by_state.get(loc.state, ()), key)
        self.states = dict(state_names)
        self.aliases: dict[str, tuple[str, str]] = {}  # alias → (locality id, state) ; id '' for a state
        # "Harris County" (with its state, when the county name is not unique), "rest of Texas/TX".
        abbreviations = {v: k for k, v in state_names.items()}
        for key, rows in (counties or {}).items():
            if key not in localities:
                continue
            state = localities[key].state
            for _, _, listed in rows:
                if listed.upper().startswith("ALL "):
                    continue
                for county in re.split(r",|;| AND ", listed.upper()):
                    county = _norm(county.replace(" CITY", ""))
                    if len(county) > 2 and " in " not in f" {county} ":
                        for suffix in (f"{county} county {state.lower()}",
                                       f"{county} county {_norm(abbreviations.get(state, ''))}",
                                       f"{county} county"):
                            aliases.setdefault(suffix, set()).add(key)
        for key, loc in localities.items():
            if loc.name.upper().startswith("REST OF"):
                for state_word in (loc.state.lower(), _norm(abbreviations.get(loc.state, ""))):
                    aliases.setdefault(f"rest of {state_word}", set()).add(key)
                    aliases.setdefault(f"rest of state {state_word}", set()).add(key)
        exact = {_norm(loc.name.upper().rstrip("*")): key for key, loc in localities.items()}
        for alias, keys in aliases.items():
            if len(keys) > 1:  # a locality's own name wins ("Chicago", not "Suburban Chicago")
                keys = {exact[alias]} if alias in exact else keys & preferred.get(alias, set())
            if len(keys) == 1:
                key = next(iter(keys))
                self.aliases[alias] = (key, localities[key].state)
        for name, state in state_names.items():
            alias = _norm(name)
            if alias in self.aliases or state not in self.by_state:
                continue
            only = self.by_state[state]
            self.aliases[alias] = (only[0] if len(only) == 1 else "", state)
        ordered = sorted(self.aliases, key=lambda a: (-len(a), a))
        # A name starts with a whole word of the question: a question holding no name's first word
        # is not searched (the search tries every name at every position).
        firsts = [re.match(r"[a-z0-9]+", a) for a in ordered]
        self._first_words = frozenset(m.group(0) for m in firsts if m) if all(firsts) else None
        self._names = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(a) for a in ordered) + r")(?![a-z0-9])")


    def is_locality(self, key: str) -> bool:
        return any(key in keys for keys in self.by_state.values())

    def find(self, text: str) -> PlaceMention | None:
        """The first locality, county or state name in the question."""
        words = _norm(text)
        if self._first_words is not None and self._first_words.isdisjoint(_WORD.findall(words)):
            return None
        match = self._names.search(words)
        if not match:
            return None
        key, state = self.aliases[match.group(1)]
        return PlaceMention(match.group(1), locality=key, state=state,
                            state_localities=() if key else self.by_state.get(state, ()))

    def words_without(self, words: str) -> str:
        """Normalised question words with each place name read as one word the phrasebook weighs:
        "locality" for a locality or county, "localitystate" for a state of several localities."""
        return self._names.sub(lambda m: "locality" if self.aliases[m.group(1)][0] else "localitystate", words)
