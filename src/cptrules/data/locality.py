"""CMS locality pricing files: import each by its header, refuse a damaged file whole, load.

Five files price a fee-schedule code where the service is done: the GPCIs (Addendum E),
the ZIP5 file (ZIP → carrier and pricing locality), the counties in each locality, the
OPPS cap prices and the anesthesia conversion factors. Each is recognised by its header
(the ZIP5 file, which has none, by its fixed-width record), checked row by row, and
written as compact gzipped JSON under `locality/`; the same file twice gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataImportError, ImportProblem, InvalidInputError, ZipNeedsPlusFourError
from ..provenance import DataSource
from .files import read_json_gz, write_json_gz

FORMAT = 1
KINDS = ("gpci", "zip5", "locco", "oppscap", "anes")

_MAC = re.compile(r"^\d{4,5}$")
_LOCALITY = re.compile(r"^\d{1,2}$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_CODE = re.compile(r"^[0-9A-Z]{5}$")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(20\d{2})(?!\d)|^(\d{2})(?=[A-Z])", re.IGNORECASE)
# State(2) ZIP(5) carrier(5) locality(2) rural(1) lab CB(2) rural2(1) filler(2) plus-four(1)
# blank(1) Part B payment(1) filler(52) year/quarter(5): 80 characters (ZIP5lyout.txt).
_ZIP5 = re.compile(r"^([A-Z]{2})(\d{5})(\d{5})(\d{2})([ RB])(..)(.)(..)([01])(.)(.)(.{52})(\d{4}[1-4])$")


_KEEP_UPPER = {"NYC", "DC", "MD", "VA", "NJ", "TX", "NY", "II"}


def display_name(name: str) -> str:
    """CMS's upper-case locality name as a person writes it: REST OF TEXAS → Rest of Texas."""
    def word(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in _KEEP_UPPER:
            return text
        return text.lower() if text in {"OF", "AND"} else text.capitalize()
    return re.sub(r"[A-Za-z]+", word, name).replace("Cnty", "County").replace("Cntys", "Counties")


def locality_id(mac: str, number: str) -> str:
    """The key used everywhere: five-digit MAC, dash, two-digit locality (01112-05)."""
    return f"{int(mac):05d}-{int(number):02d}"


@dataclass
class ImportedLocalityFile:
    """What an import produced, ready to write."""

    payload: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.payload["key"])

    @property
    def kind(self) -> str:
        return str(self.payload["kind"])


class _Refuser:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, line: int, column: str, message: str) -> DataImportError:
        return DataImportError(self.name, ImportProblem(line, column, message))


def _year_from_name(name: str) -> int | None:
    found = _YEAR_IN_NAME.search(name)
    if not found:
        return None
    return int(found.group(1)) if found.group(1) else 2000 + int(found.group(2))


def import_locality_file(path: Path, year: int | None = None) -> ImportedLocalityFile:
    """Recognise a CMS locality file by its header and import it; refuse it whole on any problem."""
    refuse = _Refuser(str(path))
    if not path.is_file():
        raise refuse(0, "", "no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise refuse(raw[: exc.start].count(b"\n") + 1, "", "the file is not ASCII text, as CMS's "
                                                             "locality files are") from None
    first = text.split("\n", 1)[0].rstrip("\r")
    common = {"format": FORMAT, "sha256": hashlib.sha256(raw).hexdigest(), "source_name": path.name}
    if _ZIP5.match(first):
        return ImportedLocalityFile({**common, **_zip5(text, refuse)})
    rows = list(csv.reader(io.StringIO(text, newline="")))
    heads = [[c.strip().upper() for c in r] for r in rows[:10]]
    for at, head in enumerate(heads):
        joined = ",".join(head)
        if "LOCALITY NUMBER" in joined and any("GPCI" in c for c in head):
            return ImportedLocalityFile({**common, **_gpci(rows, at, refuse)})
        if "LOCALITY NUMBER" in joined and "COUNTIES" in head:
            return ImportedLocalityFile({**common, **_locco(rows, at, refuse, year or _year_from_name(path.name)
                                                            or _caption_year(rows[:at], refuse))})
        if head[:5] == ["HCPCS", "MOD", "PROCSTAT", "CARRIER", "LOCALITY"]:
            return ImportedLocalityFile({**common, **_oppscap(rows, at, refuse, _need_year(
                year or _year_from_name(path.name), refuse, "OPPS cap"), path.name)})
        if head[:3] == ["CONTRACTOR", "LOCALITY", "LOCALITY NAME"] and len(head) > 3 and "ANES CF" in head[3]:
            return ImportedLocalityFile({**common, **_anes(rows, at, refuse, _need_year(
                year or _year_from_name(path.name), refuse, "anesthesia conversion factor"))})
    raise refuse(1, "", "not a CMS locality file: no GPCI (Addendum E), county (LOCCO), OPPS cap or "
                        "anesthesia header in the first 10 lines, and not a ZIP5 fixed-width record")


def _need_year(year: int | None, refuse: _Refuser, what: str) -> int:
    if year is None:
        raise refuse(1, "", f"the {what} file does not state its year; pass --year")
    return year


def _caption_year(rows: list[list[str]], refuse: _Refuser) -> int:
    found = re.search(r"\b(20\d{2}) LOCALITIES", " ".join(c for r in rows for c in r).upper())
    return _need_year(int(found.group(1)) if found else None, refuse, "county")


def _is_data(row: list[str]) -> bool:
    """A data row has cells past the first; captions, footnotes and blank rows do not."""
    return any(c.strip() for c in row[1:])


def _columns(head: list[str], wanted: dict[str, str], line: int, refuse: _Refuser) -> dict[str, int]:
    """Map short names to column indexes by header text (a regex per column)."""
    found = {}
    for key, pattern in wanted.items():
        at = next((i for i, c in enumerate(head) if re.fullmatch(pattern, c.strip(), re.IGNORECASE)), None)
        if at is None:
            raise refuse(line, "", f"no column matching {pattern!r} in the header")
        found[key] = at
    return found


def _number(cell: str, line: int, column: str, refuse: _Refuser) -> float:
    cell = cell.strip()
    if not _NUMBER.match(cell):
        raise refuse(line, column, f"{cell!r} is not a number")
    return float(cell)


def _ids(mac: str, number: str, line: int, refuse: _Refuser, mac_col: str, loc_col: str) -> str:
    mac, number = mac.strip(), number.strip()
    if not _MAC.match(mac):
        raise refuse(line, mac_col, f"{mac!r} is not a Medicare contractor (MAC) number")
    if not _LOCALITY.match(number):
        raise refuse(line, loc_col, f"{number!r} is not a locality number")
    return locality_id(mac, number)


def _data_rows(rows: list[list[str]], header_at: int, width: int, refuse: _Refuser):
    """(line, row) for each data row after the header; a short row is refused."""
    for line, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not _is_data(row):
            if row and re.match(r"\s*\d", row[0]):  # a data row that lost its separators
                raise refuse(line, "", f"{len(row)} field(s) where the header has {width} (damaged row)")
            continue
        if len(row) < width or any(c.strip() for c in row[width:]):
            raise refuse(line, "", f"{len(row)} fields where the header has {width} (truncated or damaged row)")
        yield line, row


def _gpci(rows: list[list[str]], at: int, refuse: _Refuser) -> dict[str, Any]:
    head = rows[at]
    years = {int(m.group(1)) for c in head for m in [re.match(r"\s*(20\d{2}) (PW|PE|MP) GPCI", c, re.I)] if m}
    if len(years) != 1:
        raise refuse(at + 1, "", "the GPCI columns do not name one year (e.g. '2025 PE GPCI')")
    year = years.pop()
    cols = _columns(head, {"mac": r"Medicare Administrative Contractor.*", "state": "State",
                           "number": "Locality Number", "name": "Locality Name",
                           "work": rf"{year} PW GPCI.*", "pe": rf"{year} PE GPCI.*",
                           "mp": rf"{year} MP GPCI.*"}, at + 1, refuse)
    out, seen = [], set()
    for line, row in _data_rows(rows, at, len(head), refuse):
        key = _ids(row[cols["mac"]], row[cols["number"]], line, refuse, head[cols["mac"]], head[cols["number"]])
        if key in seen:
            raise refuse(line, head[cols["number"]], f"locality {key} appears twice")
        seen.add(key)
        state = row[cols["state"]].strip()
        if not re.fullmatch(r"[A-Z]{2}", state):
            raise refuse(line, "State", f"{state!r} is not a two-letter state")
        name = row[cols["name"]].strip().rstrip("*").strip()
        if not name:
            raise refuse(line, "Locality Name", "empty locality name")
        out.append([key, state, name] + [_number(row[cols[k]], line, head[cols[k]].strip(), refuse)
                                         for k in ("work", "pe", "mp")])
    if not out:
        raise refuse(len(rows), "", "the file has a header but no data rows")
    return {"kind": "gpci", "key": f"GPCI{year}", "year": year,
            "title": f"CMS Addendum E, CY {year} GPCIs", "fields": ["id", "state", "name", "work", "pe", "mp"],
            "rows": sorted(out)}


def _locco(rows: list[list[str]], at: int, refuse: _Refuser, year: int) -> dict[str, Any]:
    head = rows[at]
    cols = _columns(head, {"mac": r"Medicare Adm\w* Contractor", "number": "Locality Number",
                           "state": "State", "area": "Fee Schedule Area", "counties": "Counties"},
                    at + 1, refuse)
    out, state = [], ""
    for line, row in _data_rows(rows, at, len(head), refuse):
        key = _ids(row[cols["mac"]], row[cols["number"]], line, refuse, "Medicare Adminstrative Contractor",
                   "Locality Number")
        state = row[cols["state"]].strip() or state
        if not state:
            raise refuse(line, "State", "no state on this row or an earlier one")
        area, counties = row[cols["area"]].strip(), row[cols["counties"]].strip()
        if not area or not counties:
            raise refuse(line, "Fee Schedule Area" if not area else "Counties", "empty cell")
        out.append([key, state, area, counties])
    if not out:
        raise refuse(len(rows), "", "the file has a header but no data rows")
    return {"kind": "locco", "key": f"LOCCO{year}", "year": year,
            "title": f"CMS counties included in {year} localities",
            "fields": ["id", "state", "area", "counties"], "rows": out}


def _oppscap(rows: list[list[str]], at: int, refuse: _Refuser, year: int, name: str) -> dict[str, Any]:
    head = [c.strip() for c in rows[at]]
    out, seen = [], set()
    for line, row in _data_rows(rows, at, 7, refuse):
        code, mod, status = (c.strip() for c in row[:3])
        if not _CODE.match(code):
            raise refuse(line, "HCPCS", f"{code!r} is not a five-character code")
        if mod not in ("", "26", "TC"):
            raise refuse(line, "MOD", f"{mod!r} is not a modifier of the cap file (blank, 26, TC)")
        key = _ids(row[3], row[4], line, refuse, "CARRIER", "LOCALITY")
        if (code, mod, key) in seen:
            raise refuse(line, "HCPCS", f"{code} {mod or '(global)'} in {key} appears twice")
        seen.add((code, mod, key))
        out.append([code, mod, status, key, _number(row[5], line, head[5], refuse),
                    _number(row[6], line, head[6], refuse)])
    if not out:
        raise refuse(len(rows), "", "the file has a header but no data rows")
    stem = re.sub(r"\W", "", Path(name).stem.upper())
    return {"kind": "oppscap", "key": f"{stem}{year}" if str(year) not in stem else stem, "year": year,
            "title": f"CMS OPPS cap prices ({Path(name).stem}, {year})",
            "fields": ["code", "mod", "status", "id", "facility", "non_facility"], "rows": sorted(out)}


def _anes(rows: list[list[str]], at: int, refuse: _Refuser, year: int) -> dict[str, Any]:
    head = rows[at]
    national = re.search(r"(\d+\.\d+)", head[3])
    out, seen = [], set()
    for line, row in _data_rows(rows, at, 4, refuse):
        key = _ids(row[0], row[1], line, refuse, "Contractor", "Locality")
        if key in seen:
            raise refuse(line, "Locality", f"locality {key} appears twice")
        seen.add(key)
        out.append([key, row[2].strip().rstrip("*").strip(), _number(row[3], line, head[3].strip(), refuse)])
    if not out:
        raise refuse(len(rows), "", "the file has a header but no data rows")
    return {"kind": "anes", "key": f"ANES{year}", "year": year,
            "title": f"CMS {year} anesthesia conversion factors by locality",
            "national": float(national.group(1)) if national else 0.0,
            "fields": ["id", "name", "cf"], "rows": sorted(out)}


def _zip5(text: str, refuse: _Refuser) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    quarters = set()
    for line, record in enumerate(text.split("\n"), start=1):
        record = record.rstrip("\r")
        if not record.strip():
            continue
        found = _ZIP5.match(record)
        if not found:
            raise refuse(line, _zip5_column(record), "not a ZIP5 record as ZIP5lyout.txt lays it out")
        state, zip5, carrier, number, rural, _, _, _, plus4, _, _, _, quarter = found.groups()
        if zip5 in out:
            raise refuse(line, "Zip Code", f"ZIP {zip5} appears twice")
        out[zip5] = [state, locality_id(carrier, number), rural.strip(), plus4 == "1"]
        quarters.add(quarter)
    if not out:
        raise refuse(1, "", "no ZIP5 records")
    if len(quarters) != 1:
        raise refuse(1, "Year/Quarter", f"records of several quarters: {', '.join(sorted(quarters))}")
    quarter = quarters.pop()
    # Stored by locality: each locality's ZIPs in order, with the rural and plus-four flags.
    by_locality: dict[str, dict[str, list[str]]] = {}
    for zip5 in sorted(out):
        state, key, rural, plus4 = out[zip5]
        group = by_locality.setdefault(key, {})
        group.setdefault(f"{state}|{rural}|{int(plus4)}", []).append(zip5)
    return {"kind": "zip5", "key": f"ZIP5_{quarter}", "year": int(quarter[:4]), "quarter": quarter,
            "title": f"CMS ZIP code to carrier locality file, {quarter[:4]} Q{quarter[4]}",
            "groups": {k: dict(sorted(v.items())) for k, v in sorted(by_locality.items())}}


def _zip5_column(record: str) -> str:
    """The layout field of the first position that breaks the record (for the error message)."""
    checks = [("State", 0, 2, r"[A-Z]{2}"), ("Zip Code", 2, 7, r"\d{5}"), ("Carrier", 7, 12, r"\d{5}"),
              ("Pricing Locality", 12, 14, r"\d{2}"), ("Rural Indicator", 14, 15, r"[ RB]"),
              ("Plus Four Flag", 20, 21, r"[01]"), ("Year/Quarter", 75, 80, r"\d{4}[1-4]")]
    for name, start, end, pattern in checks:
        if not re.fullmatch(pattern, record[start:end]):
            return name
    return "length" if len(record) != 80 else ""


def write_locality_file(imported: ImportedLocalityFile, data_dir: Path) -> Path:
    """Write aside and swap in, as every import does."""
    target = data_dir / "locality" / f"{imported.key}.json.gz"
    write_json_gz(target, imported.payload)
    return target


# -- loaded ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Locality:
    """One payment locality in one GPCI year."""

    id: str
    state: str
    name: str
    work_gpci: float
    pe_gpci: float
    mp_gpci: float

    @property
    def mac(self) -> str:
        return self.id.split("-")[0]

    @property
    def number(self) -> str:
        return self.id.split("-")[1]


@dataclass(frozen=True, slots=True)
class ZipEntry:
    zip5: str
    state: str
    locality: str
    rural: str
    needs_plus_four: bool


@dataclass
class LocalityData:
    """Every loaded locality file: GPCIs and anesthesia factors by year, ZIPs, counties, caps."""

    gpci: dict[int, dict[str, Locality]] = field(default_factory=dict)
    gpci_files: dict[int, dict[str, Any]] = field(default_factory=dict)
    zips: dict[str, ZipEntry] = field(default_factory=dict)
    zip_file: dict[str, Any] = field(default_factory=dict)
    counties: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    caps: dict[int, dict[tuple[str, str], dict[str, tuple[float, float]]]] = field(default_factory=dict)
    cap_files: dict[int, dict[str, Any]] = field(default_factory=dict)
    anes: dict[int, dict[str, float]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    question_places: Any = field(default=None, repr=False, compare=False)  # built on first question

    def add(self, payload: dict[str, Any]) -> None:
        """Take in one compact file's content (a later file of the same key replaces it)."""
        kind, year = payload["kind"], int(payload["year"])
        meta = {k: payload[k] for k in ("kind", "key", "year", "title", "sha256", "source_name")}
        self.files = [f for f in self.files if f["key"] != meta["key"]] + [meta]
        if kind == "gpci":
            self.gpci[year] = {r[0]: Locality(r[0], r[1], r[2], r[3], r[4], r[5]) for r in payload["rows"]}
            self.gpci_files[year] = meta
        elif kind == "zip5":
            self.zips = {}
            for key, groups in payload["groups"].items():
                for flags, zips in groups.items():
                    state, rural, plus4 = flags.split("|")
                    for zip5 in zips:
                        self.zips[zip5] = ZipEntry(zip5, state, key, rural, plus4 == "1")
            self.zip_file = meta
        elif kind == "locco":
            self.counties = {}
            for key, state, area, counties in payload["rows"]:
                self.counties.setdefault(key, []).append((state, area, counties))
        elif kind == "oppscap":
            table: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
            for code, mod, _, key, facility, non_facility in payload["rows"]:
                table.setdefault((code, mod), {})[key] = (facility, non_facility)
            self.caps[year] = table
            self.cap_files[year] = meta
        elif kind == "anes":
            self.anes[year] = {r[0]: r[2] for r in payload["rows"]}

    @classmethod
    def load_folder(cls, folder: Path, into: LocalityData | None = None) -> LocalityData:
        data = into or cls()
        for path in sorted((folder / "locality").glob("*.json.gz")):
            data.add(read_json_gz(path))
        return data

    def years(self) -> list[int]:
        return sorted(self.gpci)

    # -- places --------------------------------------------------------------------------

    def names(self) -> dict[str, Locality]:
        """Every locality by id, from the newest GPCI year (for names and states)."""
        return self.gpci[max(self.gpci)] if self.gpci else {}

    def resolve(self, zip_code: str = "", locality: str = "") -> Place | None:
        """The place a request names, or None when it names none; bad input raises.

        A ZIP code is five digits or ZIP+4; a locality is MAC-locality (01112-05). Both may be
        given when they agree. A ZIP CMS prices by ZIP+4 needs the locality named instead.
        """
        zip_code, locality = zip_code.strip(), locality.strip()
        if not zip_code and not locality:
            return None
        place = None
        if locality:
            found = re.fullmatch(r"(\d{4,5})\s*[-/ ]\s*(\d{1,2})", locality)
            key = locality_id(*found.groups()) if found else ""
            if key not in self.names():
                raise InvalidInputError(
                    f"{locality!r} is not a Medicare payment locality: give MAC-locality as CMS lists "
                    "it, e.g. 01112-05 (San Francisco) or 13202-01 (Manhattan); ListLocalities lists them",
                    "locality", {"locality": locality}, reason="UNKNOWN_LOCALITY")
            place = Place(key)
        if zip_code:
            found = re.fullmatch(r"(\d{5})(?:-?(\d{4}))?", zip_code)
            entry = self.zips.get(found.group(1)) if found else None
            if entry is None:
                raise InvalidInputError(
                    f"{zip_code!r} is not a ZIP code on CMS's ZIP-to-locality file "
                    f"({self.zip_file.get('key', 'none loaded')}): give five digits or ZIP+4, e.g. 10001",
                    "zip_code", {"zip_code": zip_code}, reason="UNKNOWN_ZIP_CODE")
            if place is not None:
                if entry.needs_plus_four or entry.locality == place.id:
                    return Place(place.id, entry.zip5, entry.rural)
                raise InvalidInputError(
                    f"ZIP {entry.zip5} is in locality {entry.locality}, not {place.id}", "locality",
                    {"zip_code": zip_code, "locality": locality}, reason="ZIP_LOCALITY_MISMATCH")
            if entry.needs_plus_four:
                raise ZipNeedsPlusFourError(zip_code, self.candidates(entry))
            place = Place(entry.locality, entry.zip5, entry.rural)
        return place

    def state_names(self) -> dict[str, str]:
        """Full state names (county file) → two-letter states (GPCI file)."""
        names = self.names()
        return {state.strip(): names[key].state for key, rows in self.counties.items() if key in names
                for state, _, _ in rows}

    def counties_of(self, key: str) -> str:
        return "; ".join(f"{area.title()}: {counties.title()}" for _, area, counties in self.counties.get(key, []))

    def info(self, key: str, year: int) -> LocalityInfo:
        """One locality with the GPCIs of a year (the newest year's names when that year lacks it)."""
        row = self.gpci.get(year, {}).get(key)
        shown = row or self.names()[key]
        return LocalityInfo(shown, self.counties_of(key), year if row else 0,
                            self.anes.get(year, {}).get(key, 0.0))

    def candidates(self, entry: ZipEntry) -> list[str]:
        """The localities a ZIP+4-priced ZIP may fall in: its ZIP5 locality first, then the
        other localities of that locality's state."""
        names = self.names()
        state = names[entry.locality].state if entry.locality in names else entry.state
        others = sorted(k for k, v in names.items() if v.state == state and k != entry.locality)
        return [f"{k} ({display_name(names[k].name)})" if k in names else k for k in [entry.locality, *others]]

    def place_facts(self, facts: dict[str, Any], place: Place, code: str) -> list[DataSource]:
        """Add a place's facts for the fee-schedule release year; return the files used."""
        year = int(facts["pfs_release_year"])
        named = self.gpci.get(year, {}).get(place.id) or self.names().get(place.id)
        if named is None:
            return []
        facts.update(locality_id=place.id, locality_name=named.name, locality_label=display_name(named.name),
                     locality_state=named.state,
                     locality_mac=named.mac, locality_number=named.number, locality_zip=place.zip5,
                     locality_rural=place.rural,
                     locality_counties=self.counties_of(place.id))
        used = []
        row = self.gpci.get(year, {}).get(place.id)
        if row is not None:
            meta = self.gpci_files[year]
            facts.update(gpci_year=year, gpci_release=meta["key"], locality_work_gpci=row.work_gpci,
                         locality_pe_gpci=row.pe_gpci, locality_mp_gpci=row.mp_gpci)
            used.append(_source(meta))
            cap = self.caps.get(year, {}).get((code, facts["pfs_row_modifier"]), {}).get(place.id)
            if cap is not None:
                facts.update(opps_cap_listed=True, opps_cap_release=self.cap_files[year]["key"],
                             opps_cap_facility=cap[0], opps_cap_non_facility=cap[1])
                used.append(_source(self.cap_files[year]))
            facts["anesthesia_conversion_factor"] = self.anes.get(year, {}).get(place.id, 0.0)
        if place.zip5 and self.zip_file:
            used.append(_source(self.zip_file))
        return used


@dataclass(frozen=True, slots=True)
class LocalityInfo:
    """A locality as ListLocalities shows it: names, counties and one year's GPCIs."""

    locality: Locality
    counties: str
    gpci_year: int
    anesthesia_conversion_factor: float


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved payment locality, and the ZIP it came from when it came from one."""

    id: str
    zip5: str = ""
    rural: str = ""


def _source(meta: dict[str, Any]) -> DataSource:
    return DataSource(meta["key"], meta["title"], f"{meta['year']}-01-01" if meta["kind"] == "gpci" else "",
                      "", meta["sha256"])
