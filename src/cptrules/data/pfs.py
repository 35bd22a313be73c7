"""CMS Physician Fee Schedule RVU files (PPRRVU): import by header names, load releases.

The CSV has a banner, then five stacked caption rows whose cells join into the
column names, ending with the row that starts "HCPCS". Columns are found by
those names, so the 31-column layout (to 2025) and the 32-column one (2026, with
PRIC IND) both import. The AMA's DESCRIPTION column is never kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataImportError, ImportProblem
from .files import read_json_gz, write_json_gz

FORMAT = 1

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
NUMERIC = {"work", "nf_pe", "f_pe", "mp", "nf_total", "f_total", "cf", "pre", "intra", "post"}
STATUS_CODES = set("ABCDEFGHIJMNPRTX")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_CODE = re.compile(r"^[0-9A-Z]{5}$")
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

    @property
    def key(self) -> str:
        return str(self.payload["release"])


def import_pfs_csv(path: Path, release: str | None = None, qp_conversion_factor: float = 0.0) -> ImportedRelease:
    """Parse and check a PPRRVU CSV; refuse it whole, with line and column, on any problem."""
    name = str(path)

    def refuse(line: int, column: str, message: str) -> DataImportError:
        return DataImportError(name, ImportProblem(line, column, message))

    if not path.is_file():
        raise refuse(0, "", "no such file")
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
    try:
        released = (dt.datetime.strptime(released_match.group(0), "RELEASED %m/%d/%Y").date().isoformat()
                    if released_match else "")
    except ValueError:
        raise refuse(1, "", f"the banner's {released_match.group(0)!r} is not a calendar date") from None
    keys = [k for k, col in FIELDS if col in index]
    out_rows: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    conversion = None
    for offset, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise refuse(offset, "", f"{len(row)} fields where the header has {len(names)} "
                                     "(truncated or damaged row)")
        record: list[Any] = []
        for key, col in FIELDS:
            if col not in index:
                continue
            cell = row[index[col]].strip()
            if key == "code" and not _CODE.match(cell):
                raise refuse(offset, col, f"{cell!r} is not a five-character code")
            if key == "status" and cell not in STATUS_CODES:
                raise refuse(offset, col, f"{cell!r} is not a PFS status indicator")
            if key in NUMERIC:
                if not _NUMBER.match(cell):
                    raise refuse(offset, col, f"{cell!r} is not a number")
                record.append(float(cell))
            else:
                record.append(cell)
        code, mod = record[0], record[1]
        if (code, mod) in seen:
            raise refuse(offset, "HCPCS", f"{code} {mod or '(global)'} appears twice")
        seen.add((code, mod))
        cf = record[keys.index("cf")]
        conversion = conversion if conversion is not None else cf
        out_rows.append(record)
    if not out_rows:
        raise refuse(len(rows), "", "the file has a header but no data rows")
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
        "conversion_factor": conversion,
        "qp_conversion_factor": qp_conversion_factor,
        "fields": keys,
        "rows": out_rows,
    }
    return ImportedRelease(payload)


def write_release(imported: ImportedRelease, data_dir: Path) -> Path:
    """Write the release aside and swap it in; the same file twice gives the same bytes.

    From 2026 CMS publishes each release twice, identical but for the conversion factor:
    the qualifying-APM ("QPP") file only adds its factor to the release already imported.
    """
    target = data_dir / "pfs" / f"{imported.key}.json.gz"
    payload = imported.payload
    if payload.get("variant") == "QPP":
        if not target.exists():
            raise DataImportError(payload["source_name"], ImportProblem(
                1, "", f"this is the qualifying-APM (QPP) file of {imported.key}: import the "
                       "non-QPP file of the same release first, then this one adds its conversion factor"))
        existing = read_json_gz(target)
        if _without_cf(existing) != _without_cf(payload):
            raise DataImportError(payload["source_name"], ImportProblem(
                1, "", f"its RVUs differ from the {imported.key} already imported; refusing to mix them"))
        existing["qp_conversion_factor"] = payload["conversion_factor"]
        payload = existing
    elif target.exists():
        payload = {**payload, "qp_conversion_factor": read_json_gz(target).get("qp_conversion_factor", 0.0)
                   or payload["qp_conversion_factor"]}
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

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PfsRelease:
        """Build from the compact file's content."""
        release = cls(
            key=payload["release"], title=payload["title"], year=int(payload["year"]),
            effective=dt.date.fromisoformat(payload["effective"]), released=payload["released"],
            sha256=payload["sha256"], conversion_factor=float(payload["conversion_factor"]),
            qp_conversion_factor=float(payload.get("qp_conversion_factor", 0.0)))
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

    @classmethod
    def load(cls, path: Path) -> PfsRelease:
        """Load a compact release file."""
        return cls.from_payload(read_json_gz(path))
