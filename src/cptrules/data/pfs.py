"""CMS Physician Fee Schedule RVU files (PPRRVU): import by header names, load releases.

The CSV has a banner, then five stacked caption rows whose cells join into the
column names, ending with the row that starts "HCPCS". Columns are found by
those names, so the 31-column layout (to 2025) and the 32-column one (2026, with
PRIC IND) both import. The AMA's DESCRIPTION column is never kept in a release: a user
who licensed the file may keep its CPT short descriptors in a separate file of their own
data directory (`with_descriptors`, written by write_descriptors), never in the embedded data.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFileError, DataImportError, ImportProblem
from .files import CHECKSUM, SUFFIX, data_files, read_verified, write_json_gz

FORMAT = 2  # 2: content checksum and the "partial" flag

# A whole PPRRVU release holds about 19,000 (code, modifier) rows (RVU25D: 19,090). A file with
# fewer than this is a cut or an excerpt: refused unless imported as partial, so that a
# truncated download never replaces a whole release. A file cut in half falls well below it.
MIN_WHOLE_ROWS = 15_000
# A release also may not shrink below 90% of the newest whole release already loaded: CMS adds
# and deletes a few hundred codes a year, so a bigger drop means a cut file.
SHRINK_LIMIT = 0.9

COLUMNS_2025 = (
    "HCPCS", "MOD", "DESCRIPTION", "STATUS CODE", "NOT USED FOR MEDICARE PAYMENT", "WORK RVU",
    "NON-FAC PE RVU", "NON-FAC NA INDICATOR", "FACILITY PE RVU", "FACILITY NA INDICATOR", "MP RVU",
    "NON-FACILITY TOTAL", "FACILITY TOTAL", "PCTC IND", "GLOB DAYS", "PRE OP", "INTRA OP",
    "POST OP", "MULT PROC", "BILAT SURG", "ASST SURG", "CO- SURG", "TEAM SURG", "ENDO BASE",
    "CONV FACTOR", "PHYSICIAN SUPERVISION OF DIAGNOSTIC PROCEDURES", "CALCULATION FLAG",
    "DIAGNOSTIC IMAGING FAMILY INDICATOR", "NON-FACILITY PE USED FOR OPPS PAYMENT AMOUNT",
    "FACILITY PE USED FOR OPPS PAYMENT AMOUNT", "MP USED FOR OPPS PAYMENT AMOUNT",
)
COLUMNS_2026 = COLUMNS_2025[:23] + ("PRIC IND",) + COLUMNS_2025[23:]
LAYOUTS = {len(COLUMNS_2025): COLUMNS_2025, len(COLUMNS_2026): COLUMNS_2026}

# Short keys stored per row, in this order; DESCRIPTION is deliberately absent.
FIELDS = (
    ("code", "HCPCS"), ("mod", "MOD"), ("status", "STATUS CODE"),
    ("not_used", "NOT USED FOR MEDICARE PAYMENT"), ("work", "WORK RVU"),
    ("nf_pe", "NON-FAC PE RVU"), ("nf_na", "NON-FAC NA INDICATOR"),
    ("f_pe", "FACILITY PE RVU"), ("f_na", "FACILITY NA INDICATOR"), ("mp", "MP RVU"),
    ("nf_total", "NON-FACILITY TOTAL"), ("f_total", "FACILITY TOTAL"), ("pctc", "PCTC IND"),
    ("global", "GLOB DAYS"), ("mult", "MULT PROC"), ("bilat", "BILAT SURG"),
    ("asst", "ASST SURG"), ("co", "CO- SURG"), ("team", "TEAM SURG"), ("endo", "ENDO BASE"),
    ("cf", "CONV FACTOR"), ("supv", "PHYSICIAN SUPERVISION OF DIAGNOSTIC PROCEDURES"),
    ("pric", "PRIC IND"),
    # The global package's shares (modifiers 54/55/56) and the imaging family (MULT PROC 4).
    ("pre", "PRE OP"), ("intra", "INTRA OP"), ("post", "POST OP"),
    ("dif", "DIAGNOSTIC IMAGING FAMILY INDICATOR"),
)
RVUS = ("work", "nf_pe", "f_pe", "mp", "nf_total", "f_total")
SHARES = ("pre", "intra", "post")  # the global package's pre-, intra- and post-operative shares
NUMERIC = {*RVUS, "cf", *SHARES}
STATUS_CODES = set("ABCDEFGHIJMNPRTX")
# The value sets of CMS's record layout (RVU25D.pdf, "PPRRVU" record and Attachment A).
# PRIC IND (from 2026) has no published layout here; every row seen holds one digit.
VALUE_SETS: dict[str, tuple[frozenset[str], str]] = {
    "mod": (frozenset({"", "26", "TC", "53"}), "a PFS modifier (blank, 26, TC or 53)"),
    "status": (frozenset(STATUS_CODES), "a PFS status indicator"),
    "not_used": (frozenset({"", "+"}), "the not-used-for-payment flag (blank or +)"),
    "nf_na": (frozenset({"", "NA"}), "an NA indicator (blank or NA)"),
    "f_na": (frozenset({"", "NA"}), "an NA indicator (blank or NA)"),
    "pctc": (frozenset("0123456789"), "a PC/TC indicator (0-9)"),
    "global": (frozenset({"000", "010", "090", "MMM", "XXX", "YYY", "ZZZ"}),
               "a global period (000, 010, 090, MMM, XXX, YYY, ZZZ)"),
    "mult": (frozenset("012345679"), "a multiple-procedure indicator (0-7, 9)"),
    "bilat": (frozenset("01239"), "a bilateral-surgery indicator (0-3, 9)"),
    "asst": (frozenset("0129"), "an assistant-at-surgery indicator (0-2, 9)"),
    "co": (frozenset("0129"), "a co-surgeon indicator (0-2, 9)"),
    "team": (frozenset("0129"), "a team-surgery indicator (0-2, 9)"),
    "supv": (frozenset({"01", "02", "03", "04", "05", "06", "09", "21", "22", "66", "6A", "77", "7A"}),
             "a physician-supervision level (01-06, 09, 21, 22, 66, 6A, 77, 7A)"),
    "pric": (frozenset("0123456789"), "a PRIC IND value (one digit)"),
    "dif": (frozenset({"88", "99"}), "a diagnostic imaging family indicator (88 or 99)"),
}
MAX_RVU = 999.99  # the layout's 999.99 picture
CF_RANGE = (15.0, 100.0)  # every national conversion factor since 1992 lies well inside this
TOTAL_TOLERANCE = 0.011  # totals are sums of parts each rounded to cents
_RVU_CELL = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
_SHARE_CELL = re.compile(r"^[01](\.\d{1,2})?$|^\.\d{1,2}$")
_CF_CELL = re.compile(r"^\d{1,3}\.\d{1,4}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_CODE = re.compile(r"^(\d{5}|\d{4}[A-Z]|[A-Z]\d{4})$")
_MONTHS = {"january": "A", "april": "B", "july": "C", "october": "D"}
_QUARTER_START = {"A": 1, "B": 4, "C": 7, "D": 10}
_RELEASE_KEY = re.compile(r"^RVU(\d{2})([A-D])(R\d*)?$")


def release_effective(key: str) -> dt.date:
    """First date of service of a release from its key: RVU25D → 2025-10-01."""
    found = _RELEASE_KEY.match(key)
    if not found:
        raise ValueError(f"{key!r} is not a release key like RVU25D or RVU26AR")
    return dt.date(2000 + int(found.group(1)), _QUARTER_START[found.group(2)], 1)


def _header_names(rows: list[list[str]], header_at: int) -> list[str]:
    """Join the caption cells above and in the HCPCS row, top to bottom, per column."""
    width = len(rows[header_at])
    names = []
    for col in range(width):
        parts = [rows[r][col].strip() for r in range(max(0, header_at - 4), header_at + 1)
                 if col < len(rows[r]) and rows[r][col].strip()]
        names.append(" ".join(parts))
    return names


@dataclass
class ImportedRelease:
    """What an import produced, ready to write."""

    payload: dict[str, Any]
    path: str = ""  # the CMS file it came from, for messages
    # CPT short descriptors (the DESCRIPTION column) by code, only when asked for: AMA text,
    # stored apart from the release and only in the user's own data directory.
    descriptors: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return str(self.payload["release"])


def _cell(key: str, cell: str) -> Any:
    """One stored cell, checked against CMS's layout; ValueError with the reason otherwise."""
    if key in VALUE_SETS:
        allowed, label = VALUE_SETS[key]
        if cell not in allowed:
            raise ValueError(f"{cell[:40]!r} is not {label}")
        return cell
    if key == "code":
        if not _CODE.match(cell):
            raise ValueError(f"{cell[:40]!r} is not a five-character CPT or HCPCS code")
        return cell
    if key == "endo":
        if cell and not _CODE.match(cell):
            raise ValueError(f"{cell[:40]!r} is not an endoscopic base code (blank or a code)")
        return cell
    if key == "cf":
        if not _CF_CELL.match(cell):
            raise ValueError(f"{cell[:40]!r} is not a conversion factor like 32.3465")
        value = float(cell)
        if not CF_RANGE[0] <= value <= CF_RANGE[1]:
            raise ValueError(f"{cell} is not a plausible conversion factor "
                             f"({CF_RANGE[0]:g} to {CF_RANGE[1]:g} dollars)")
        return value
    if key in SHARES:
        if not _SHARE_CELL.match(cell) or float(cell) > 1.0:
            raise ValueError(f"{cell[:40]!r} is not a share of the global package (0.00 to 1.00)")
        return float(cell)
    # An RVU: CMS prints 0.00 to 999.99, never negative, never blank.
    if not _RVU_CELL.match(cell):
        if _NUMBER.match(cell) and cell.startswith("-"):
            raise ValueError(f"{cell[:40]!r} is negative; CMS never publishes a negative RVU")
        if _NUMBER.match(cell):
            raise ValueError(f"{cell[:40]!r} is outside 0.00 to {MAX_RVU} (the layout's 999.99)")
        raise ValueError(f"{cell[:40]!r} is not a number like 1.30")
    return float(cell)


def _row_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """The first invariant CMS's file keeps that this row breaks, as (column, message)."""
    for total, pe, label in (("nf_total", "nf_pe", "non-facility"), ("f_total", "f_pe", "facility")):
        parts = values["work"] + values[pe] + values["mp"]
        if abs(values[total] - parts) > TOTAL_TOLERANCE:
            column = dict(FIELDS)[total]
            return column, (f"the {label} total {values[total]:.2f} is not work + PE + MP "
                            f"({parts:.2f})")
    if values["not_used"] == "+" and values["status"] in "ART":
        return ("NOT USED FOR MEDICARE PAYMENT",
                f"status {values['status']} RVUs are used for payment, yet the row is flagged +")
    if (values["mult"] == "3") != bool(values["endo"]):
        return ("ENDO BASE", ("an endoscopic base code goes with multiple-procedure indicator 3, and only "
                              f"with it (indicator {values['mult']}, base {values['endo'] or 'blank'})"))
    return None


def newest_whole_release(folders: list[Path] | tuple[Path, ...]) -> tuple[str, int] | None:
    """(key, row count) of the newest whole (not partial) release stored in these data folders;
    damaged files are skipped here (loading reports them)."""
    found: list[tuple[str, str, int]] = []
    for folder in folders:
        for path in data_files(folder / "pfs"):
            try:
                payload = PfsRelease.read_payload(path)
            except DataFileError:
                continue
            if not payload["partial"]:
                found.append((payload["effective"], payload["release"], len(payload["rows"])))
    if not found:
        return None
    _, key, rows = max(found)
    return key, rows


def import_pfs_csv(path: Path, release: str | None = None, qp_conversion_factor: float = 0.0,
                   partial: bool = False, ignore_banner_year: bool = False,
                   reference: tuple[str, int] | None = None,
                   with_descriptors: bool = False) -> ImportedRelease:
    """Parse and check a PPRRVU CSV; refuse it whole, with line and column, on any problem.

    A file with fewer rows than a whole release holds (MIN_WHOLE_ROWS, and 90% of the
    `reference` release, the newest whole one loaded) is refused unless `partial`; a partial
    release is stored as such, and codes it does not list are unknown for its period. A
    release key whose year contradicts the banner is refused unless `ignore_banner_year`.
    With `with_descriptors`, each code's DESCRIPTION cell (its global row's, else its first
    row's) is kept apart in `descriptors`.
    """
    name = str(path)

    def refuse(line: int, column: str, message: str) -> DataImportError:
        return DataImportError(name, ImportProblem(line, column, message))

    if not path.is_file():
        raise refuse(0, "", "no such file")
    if qp_conversion_factor and not CF_RANGE[0] <= qp_conversion_factor <= CF_RANGE[1]:
        raise refuse(0, "", f"the qualifying-APM conversion factor {qp_conversion_factor:g} is not "
                            f"plausible ({CF_RANGE[0]:g} to {CF_RANGE[1]:g} dollars)")
    raw = path.read_bytes()

    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise refuse(line, "", "the file is not ASCII text, as CMS's RVU CSV is") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header_at = next((i for i, r in enumerate(rows[:30]) if r and r[0].strip() == "HCPCS"), None)
    if header_at is None:
        raise refuse(1, "", "no header row starting with HCPCS in the first 30 lines: "
                            "not a PPRRVU relative value file")
    names = _header_names(rows, header_at)
    expected = LAYOUTS.get(len(names))
    if expected is None or tuple(names) != expected:
        want = expected or COLUMNS_2025
        diff = next((i for i, (a, b) in enumerate(zip(names, want)) if a != b), min(len(names), len(want)))
        got = names[diff] if diff < len(names) else "(missing)"
        wanted = want[diff] if diff < len(want) else "(nothing)"
        raise refuse(header_at + 1, str(diff + 1),
                     f"{len(names)} columns; column {diff + 1} is {got!r} where {wanted!r} "
                     f"was expected (layouts known: 31 columns to 2025, 32 from 2026)")
    index = {n: i for i, n in enumerate(names)}
    banner = " ".join(c.strip() for r in rows[:header_at] for c in r if c.strip())
    title_match = re.search(r"(\d{4}) National Physician Fee Schedule Relative Value File (\w+) Release",
                            banner)
    released_match = re.search(r"RELEASED (\d{2})/(\d{2})/(\d{4})", banner)
    if release is None:
        if not title_match or title_match.group(2).lower() not in _MONTHS:
            raise refuse(1, "", "the banner does not name the year and quarter; pass the release key "
                                "(e.g. RVU25D)")
        release = f"RVU{title_match.group(1)[2:]}{_MONTHS[title_match.group(2).lower()]}"
    try:
        effective = release_effective(release)
    except ValueError as exc:
        raise refuse(1, "", str(exc)) from None
    if title_match and int(title_match.group(1)) != effective.year and not ignore_banner_year:
        raise refuse(1, "", f"the banner says {title_match.group(1)} but release {release} prices "
                            f"{effective.year}: give the key of the file's own year (or force it with "
                            "--ignore-banner-year)")
    try:
        released = (dt.datetime.strptime(released_match.group(0), "RELEASED %m/%d/%Y").date().isoformat()
                    if released_match else "")
    except ValueError:
        raise refuse(1, "", f"the banner's {released_match.group(0)!r} is not a calendar date") from None
    stored = [(k, col, index[col]) for k, col in FIELDS if col in index]
    keys = [k for k, _, _ in stored]
    out_rows: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    conversion: tuple[float, int] | None = None
    descriptors: dict[str, str] = {}
    for offset, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise refuse(offset, "", f"{len(row)} fields where the header has {len(names)} "
                                     "(truncated or damaged row)")
        record: list[Any] = []
        for key, col, at in stored:
            try:
                record.append(_cell(key, row[at].strip()))
            except ValueError as exc:
                raise refuse(offset, col, str(exc)) from None
        values = dict(zip(keys, record))
        problem = _row_problem(values)
        if problem:
            raise refuse(offset, *problem)
        code, mod = values["code"], values["mod"]
        if (code, mod) in seen:
            raise refuse(offset, "HCPCS", f"{code} {mod or '(global)'} appears twice")
        seen.add((code, mod))
        if with_descriptors and (not mod or code not in descriptors):
            text = " ".join(row[index["DESCRIPTION"]].split())
            if len(text) > DESCRIPTOR_MAX_CHARS:
                raise refuse(offset, "DESCRIPTION", f"{len(text)} characters, where a short descriptor "
                                                    f"has at most {DESCRIPTOR_MAX_CHARS}")
            if text:
                descriptors[code] = text
        if conversion is None:
            conversion = (values["cf"], offset)
        elif values["cf"] != conversion[0]:
            raise refuse(offset, "CONV FACTOR", f"{values['cf']} differs from the {conversion[0]} of line "
                                                f"{conversion[1]}: a release has one conversion factor")
        out_rows.append(record)
    if not out_rows or conversion is None:
        raise refuse(len(rows), "", "the file has a header but no data rows")
    least, basis = MIN_WHOLE_ROWS, "RVU25D has 19,090"
    if reference and math.ceil(reference[1] * SHRINK_LIMIT) > least:
        least = math.ceil(reference[1] * SHRINK_LIMIT)
        basis = f"90% of the {reference[1]:,} of {reference[0]}, the newest whole release loaded"
    if len(out_rows) < least and not partial:
        raise refuse(len(rows), "", f"only {len(out_rows):,} data rows, where a whole release holds at least "
                                    f"{least:,} ({basis}): the file looks cut short. If it is an excerpt "
                                    "on purpose, import it with --partial; codes it does not list are then "
                                    "unknown for its period")
    year = effective.year
    variant = "QPP" if re.search(r"(?<!non)QPP", path.name, re.IGNORECASE) else "standard"
    payload = {
        "variant": variant,
        "format": FORMAT,
        "kind": "pfs",
        "release": release,
        "title": f"CMS Physician Fee Schedule {release}" + (f" (CY{year})"),
        "year": year,
        "effective": effective.isoformat(),
        "released": released,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "source_name": path.name,
        "conversion_factor": conversion[0],
        "qp_conversion_factor": qp_conversion_factor,
        "partial": bool(partial),
        "fields": keys,
        "rows": out_rows,
    }
    return ImportedRelease(payload, name, descriptors)


DESCRIPTORS_DIR = "cpt-descriptors"
DESCRIPTORS_FORMAT = 1
DESCRIPTOR_MAX_CHARS = 200  # CMS's short descriptors are under 60 characters
DESCRIPTORS_NOTICE = ("CPT short descriptors © American Medical Association, from the user's own "
                      "download of the CMS RVU file under the AMA licence; not for redistribution")
DESCRIPTORS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["format", "kind", "release", "sha256", "source_name", "notice", "descriptors", CHECKSUM],
    "properties": {
        "format": {"const": DESCRIPTORS_FORMAT},
        "kind": {"const": "cpt_short_descriptors"},
        "release": {"type": "string", "pattern": _RELEASE_KEY.pattern},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "source_name": {"type": "string"},
        "notice": {"type": "string"},
        "descriptors": {"type": "object", "minProperties": 1,
                        "propertyNames": {"pattern": _CODE.pattern},
                        "additionalProperties": {"type": "string", "minLength": 1,
                                                 "maxLength": DESCRIPTOR_MAX_CHARS}},
        CHECKSUM: {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def write_descriptors(imported: ImportedRelease, data_dir: Path) -> Path:
    """Keep an import's CPT short descriptors in the user's data directory, apart from the
    release (cpt-descriptors/<release>.json.gz); the same file twice gives the same bytes."""
    if not imported.descriptors:
        raise DataImportError(imported.path or imported.payload["source_name"], ImportProblem(
            0, "DESCRIPTION", "the file has no descriptors to keep"))
    target = data_dir / DESCRIPTORS_DIR / f"{imported.key}{SUFFIX}"
    write_json_gz(target, {
        "format": DESCRIPTORS_FORMAT, "kind": "cpt_short_descriptors", "release": imported.key,
        "sha256": imported.payload["sha256"], "source_name": imported.payload["source_name"],
        "notice": DESCRIPTORS_NOTICE, "descriptors": dict(sorted(imported.descriptors.items()))})
    return target


def load_descriptors(folder: Path) -> list[tuple[str, dict[str, str]]]:
    """(release, descriptors by code) of every descriptor file in one data folder, oldest
    release first; a damaged file raises DataFileError naming it."""
    found = []
    for path in data_files(folder / DESCRIPTORS_DIR):
        payload = read_verified(path, DESCRIPTORS_SCHEMA, DESCRIPTORS_FORMAT)
        if payload["release"] + SUFFIX != path.name:
            raise DataFileError(str(path), f"holds release {payload['release']}, not the one its name says")
        found.append((payload["release"], payload["descriptors"]))
    return sorted(found, key=lambda item: release_effective(item[0]))


def _same_release(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two payloads of one release that differ at most in file name, QP factor and seal."""
    ignored = {"source_name", "qp_conversion_factor", CHECKSUM}
    return {k: v for k, v in a.items() if k not in ignored} == {k: v for k, v in b.items() if k not in ignored}


def write_release(imported: ImportedRelease, data_dir: Path, replace: bool = False,
                  loaded_from: list[Path] | tuple[Path, ...] = ()) -> Path:
    """Write the release aside and swap it in; the same file twice gives the same bytes.

    A release key already loaded (in `data_dir` or in one of `loaded_from`, such as the
    embedded data) with other content is refused unless `replace`. Importing the very
    content already stored changes nothing. From 2026 CMS publishes each release twice,
    identical but for the conversion factor: the qualifying-APM ("QPP") file only adds its
    factor to the release already imported. Returns the file that holds the release.
    """
    target = data_dir / "pfs" / f"{imported.key}.json.gz"
    payload = imported.payload
    source = imported.path or payload["source_name"]
    if payload.get("variant") == "QPP":
        if not target.exists():
            raise DataImportError(source, ImportProblem(
                1, "", f"this is the qualifying-APM (QPP) file of {imported.key}: import the "
                       "non-QPP file of the same release first, then this one adds its conversion factor"))
        existing = PfsRelease.read_payload(target)
        if _without_cf(existing) != _without_cf(payload):
            raise DataImportError(source, ImportProblem(
                1, "", f"its RVUs differ from the {imported.key} already imported; refusing to mix them"))
        existing["qp_conversion_factor"] = payload["conversion_factor"]
        write_json_gz(target, existing)
        return target
    previous_qp = 0.0
    same_elsewhere = None
    for folder in (data_dir, *loaded_from):
        path = folder / "pfs" / f"{imported.key}.json.gz"
        if not path.is_file():
            continue
        try:
            stored = PfsRelease.read_payload(path)
        except DataFileError as error:
            if replace:
                continue
            raise DataImportError(source, ImportProblem(
                0, "", f"{imported.key} is already stored, and that file is unreadable ({error.problem}); "
                       "pass --replace to overwrite it")) from None
        if path == target:
            previous_qp = float(stored.get("qp_conversion_factor", 0.0))
        if _same_release(stored, payload):
            same_elsewhere = same_elsewhere or (path if path != target else None)
        elif not replace:
            state = " (partial)" if stored.get("partial") else ""
            raise DataImportError(source, ImportProblem(
                0, "", f"release {imported.key}{state} is already loaded from {path} with other content; "
                       "pass --replace to replace it (or --release to import under another key)"))
    if same_elsewhere is not None and not target.exists():
        return same_elsewhere  # already loaded with this very content (e.g. the embedded release)
    if previous_qp and not payload["qp_conversion_factor"]:
        payload = {**payload, "qp_conversion_factor": previous_qp}
    write_json_gz(target, payload)
    return target


def _without_cf(payload: dict[str, Any]) -> list[list[Any]]:
    """Rows without the conversion-factor cell, to compare a QPP file with its non-QPP twin."""
    at = payload["fields"].index("cf")
    return [row[:at] + row[at + 1:] for row in payload["rows"]]


@dataclass
class PfsRow:
    """One (code, modifier) row of a release, by field name."""

    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values.get(key, "")


@dataclass
class PfsRelease:
    """A loaded fee-schedule release: global rows by code, and each code's modifiers."""

    key: str
    title: str
    year: int
    effective: dt.date
    released: str
    sha256: str
    conversion_factor: float
    qp_conversion_factor: float
    rows: dict[str, PfsRow] = field(default_factory=dict)
    modifiers: dict[str, list[str]] = field(default_factory=dict)
    modifier_rows: dict[str, list[PfsRow]] = field(default_factory=dict)
    row_count: int = 0

    partial: bool = False

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PfsRelease:
        """Build from the compact file's content."""
        release = cls(
            key=payload["release"], title=payload["title"], year=int(payload["year"]),
            effective=dt.date.fromisoformat(payload["effective"]), released=payload["released"],
            sha256=payload["sha256"], conversion_factor=float(payload["conversion_factor"]),
            qp_conversion_factor=float(payload.get("qp_conversion_factor", 0.0)),
            partial=bool(payload.get("partial", False)))
        keys = payload["fields"]
        for raw in payload["rows"]:
            row = PfsRow(dict(zip(keys, raw)))
            code, mod = row["code"], row["mod"]
            if mod:
                release.modifiers.setdefault(code, []).append(mod)
                release.modifier_rows.setdefault(code, []).append(row)
            else:
                release.rows[code] = row
            release.row_count += 1
        return release

    @staticmethod
    def read_payload(path: Path) -> dict[str, Any]:
        """A stored release's content, checked whole: format, schema, checksum, every row's
        width and cell types; DataFileError naming the file and the problem otherwise."""
        payload = read_verified(path, SCHEMA, FORMAT)
        _check_rows(path, payload)
        if payload["release"] + SUFFIX != path.name:
            raise DataFileError(str(path), f"holds release {payload['release']}, not the one its name says")
        try:
            effective = release_effective(payload["release"])
        except ValueError as exc:
            raise DataFileError(str(path), str(exc)) from None
        if payload["effective"] != effective.isoformat() or payload["year"] != effective.year:
            raise DataFileError(str(path), f"effective {payload['effective']} (year {payload['year']}) "
                                           f"contradicts its key {payload['release']}")
        return payload

    @classmethod
    def load(cls, path: Path) -> PfsRelease:
        """Load a compact release file, checked whole first."""
        return cls.from_payload(cls.read_payload(path))


_FIELDS_2025 = [k for k, _ in FIELDS if k != "pric"]
_FIELDS_2026 = [k for k, _ in FIELDS]
_CHECKSUM = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "kind", "variant", "release", "title", "year", "effective", "released",
                 "sha256", "source_name", "conversion_factor", "qp_conversion_factor", "partial",
                 "fields", "rows", CHECKSUM],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "kind": {"const": "pfs"},
        "variant": {"enum": ["standard", "QPP"]},
        "release": {"type": "string", "pattern": _RELEASE_KEY.pattern},
        "title": {"type": "string"},
        "year": {"type": "integer", "minimum": 1990, "maximum": 2100},
        "effective": _DATE,
        "released": {"anyOf": [_DATE, {"const": ""}]},
        "sha256": _CHECKSUM,
        "source_name": {"type": "string"},
        "conversion_factor": {"type": "number", "minimum": CF_RANGE[0], "maximum": CF_RANGE[1]},
        "qp_conversion_factor": {"anyOf": [{"const": 0}, {"type": "number", "minimum": CF_RANGE[0],
                                                          "maximum": CF_RANGE[1]}]},
        "partial": {"type": "boolean"},
        "fields": {"enum": [_FIELDS_2025, _FIELDS_2026]},
        "rows": {"type": "array", "minItems": 1},
        CHECKSUM: _CHECKSUM,
    },
}


def _check_rows(path: Path, payload: dict[str, Any]) -> None:
    """Every row has one cell per field, finite numbers where numbers belong and text elsewhere.
    Checked column by column, so a whole release costs a few passes at C speed."""
    keys, rows = payload["fields"], payload["rows"]

    def bad(number: int, message: str) -> DataFileError:
        return DataFileError(str(path), f"rows/{number}: {message}")

    if {type(r) for r in rows} != {list} or set(map(len, rows)) != {len(keys)}:
        number, row = next((n, r) for n, r in enumerate(rows) if type(r) is not list or len(r) != len(keys))
        width = len(row) if isinstance(row, list) else type(row).__name__
        raise bad(number, f"{width} cells where fields lists {len(keys)}")
    for key, column in zip(keys, zip(*rows)):
        numeric = key in NUMERIC
        allowed = {int, float} if numeric else {str}
        if not set(map(type, column)) <= allowed or (numeric and not all(map(math.isfinite, column))):
            number, value = next((n, v) for n, v in enumerate(column)
                                 if type(v) not in allowed or (numeric and not math.isfinite(v)))
            raise bad(number, f"{key} is {value!r}, not {'a finite number' if numeric else 'text'}")