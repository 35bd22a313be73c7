"""CMS HCPCS Level II quarterly file (ANWEB): import from xlsx or CSV by header names.

CMS's descriptions are public and ship with the product, marked as CMS's text.
Only procedure rows (RECID 3) are kept; modifiers (RECID 7) are not codes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFileError, DataImportError, ImportProblem
from ..provenance import DataSource
from .files import CHECKSUM, SUFFIX, read_verified, write_json_gz

FORMAT = 3  # 2: content checksum and the "partial" flag; 3: the cross-reference (XREF1-5) codes
# A whole quarterly file lists about 8,500 procedure codes (October 2025: 8,463); fewer than
# this is a cut or an excerpt, refused unless imported as partial.
MIN_WHOLE_CODES = 6_000
XREFS = ("XREF1", "XREF2", "XREF3", "XREF4", "XREF5")
REQUIRED = ("HCPC", "RECID", "LONG DESCRIPTION", "SHORT DESCRIPTION", "PRICE1", "COV", "BETOS",
            "ADD DT", "ACT EFF DT", "TERM DT", "ACTION CD", *XREFS)
# "xref": the codes of XREF1-5 in file order, separated by one space; empty when none.
FIELDS = ("long", "short", "price1", "cov", "betos", "add", "act_eff", "term", "action", "xref")
_NAME = re.compile(r"HCPC(\d{4})_?([A-Z]{3})", re.IGNORECASE)
_KEY = re.compile(r"HCPC(\d{4})_(JAN|APR|JUL|OCT)")
_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
_CODE = re.compile(r"^[A-Z]\d{4}$")
# An XREF cell names a HCPCS Level II code or a CPT code (77046, 0159T); the file also writes
# the word CPT for "see the CPT code set", which names no code and is not kept.
_XREF = re.compile(r"^(?:[A-Z]\d{4}|\d{4}[0-9A-Z])$")
_SEE_CPT = "CPT"
_BETOS = re.compile(r"^[A-Z]\d[A-Z0-9]?$")
# Value sets of the record layout (HCPC2026_recordlayout.txt), as in the notes on the CMS data.
PRICING = frozenset({"00", "11", "12", "13", "21", "22", *(str(n) for n in range(31, 41)), "45", "46",
                     *(str(n) for n in range(51, 58)), "99"})
COVERAGE = frozenset("CDISM")
ACTIONS = frozenset("ABCDFNPRST")
_EARLIEST, _LATEST = dt.date(1965, 1, 1), dt.date(2100, 12, 31)  # Medicare began in 1965


def _iso(cell: str) -> str:
    """CMS's YYYYMMDD as an ISO date; ValueError for anything that is not a calendar date."""
    if not cell:
        return ""
    if len(cell) != 8 or not cell.isdigit():  # strptime alone would read 2025063 as June 3
        raise ValueError(f"{cell[:40]!r} is not a YYYYMMDD calendar date")
    try:
        day = dt.datetime.strptime(cell, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{cell!r} is not a YYYYMMDD calendar date") from None
    if not _EARLIEST <= day <= _LATEST:
        raise ValueError(f"{cell} is outside {_EARLIEST.year}-{_LATEST.year}")
    return day.isoformat()


def _rows_from(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = [["" if c is None else str(c) for c in r] for r in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def import_hcpcs(path: Path, key: str | None = None, partial: bool = False) -> dict[str, Any]:
    """Parse and check a HCPCS file; refuse it whole with line and column on any problem.

    A file listing fewer codes than a whole quarterly file is refused unless `partial`."""
    name = str(path)

    def refuse(line: int, column: str, message: str) -> DataImportError:
        return DataImportError(name, ImportProblem(line, column, message))

    if not path.is_file():
        raise refuse(0, "", "no such file")
    if key is None:
        found = _NAME.search(path.name)
        if not found or found.group(2).upper() not in _MONTHS:
            raise refuse(1, "", "the file name does not say the year and quarter "
                                "(e.g. HCPC2025_OCT...); pass the key, e.g. HCPC2025_OCT")
        key = f"HCPC{found.group(1)}_{found.group(2).upper()}"
    found = _KEY.fullmatch(key)
    if not found:
        raise refuse(1, "", f"{key!r} is not a key like HCPC2025_OCT")
    effective = dt.date(int(found.group(1)), _MONTHS[found.group(2).upper()], 1)
    try:
        rows = _rows_from(path)
    except UnicodeDecodeError as exc:
        raise refuse(1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except Exception as exc:  # openpyxl raises several types for a damaged workbook
        raise refuse(1, "", f"not a readable HCPCS file: {exc}") from None
    if not rows:
        raise refuse(1, "", "the file is empty")
    header = [c.strip() for c in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise refuse(1, missing[0], f"missing column(s): {', '.join(missing)}")
    at = {c: header.index(c) for c in REQUIRED}
    codes: dict[str, list[str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise refuse(line, "", f"{len(row)} fields where the header has {len(header)}")
        recid = row[at["RECID"]].strip()
        if recid not in ("3", "4", "7", "8"):
            raise refuse(line, "RECID", f"{recid[:40]!r} is not a record id (3, 4, 7 or 8)")
        if recid != "3":
            continue
        try:
            code, values = _procedure(row, at)
        except _CellError as exc:
            raise refuse(line, exc.column, exc.message) from None
        if code in codes:
            raise refuse(line, "HCPC", f"{code} appears twice")
        codes[code] = values
    if not codes:
        raise refuse(len(rows), "", "no procedure rows (RECID 3)")
    if len(codes) < MIN_WHOLE_CODES and not partial:
        raise refuse(len(rows), "", f"only {len(codes):,} procedure codes, where a whole quarterly file "
                                    f"lists over {MIN_WHOLE_CODES:,} (October 2025: 8,463): the file looks "
                                    "cut short. If it is an excerpt on purpose, import it with --partial")
    return {"format": FORMAT, "kind": "hcpcs", "key": key, "effective": effective.isoformat(),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source_name": path.name,
            "partial": bool(partial), "fields": list(FIELDS), "codes": dict(sorted(codes.items()))}


class _CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


def _procedure(row: list[str], at: dict[str, int]) -> tuple[str, list[str]]:
    """One procedure row's stored cells, each checked against the record layout."""
    def cell(column: str) -> str:
        return row[at[column]].strip()

    code = cell("HCPC")
    if not _CODE.match(code):
        raise _CellError("HCPC", f"{code[:40]!r} is not a HCPCS Level II code")
    long, short = cell("LONG DESCRIPTION"), cell("SHORT DESCRIPTION")
    if not long or not short:
        raise _CellError("LONG DESCRIPTION" if not long else "SHORT DESCRIPTION", "empty description")
    checks = (("PRICE1", PRICING, "a pricing indicator (00, 11-13, 21-22, 31-40, 45-46, 51-57, 99)"),
              ("COV", COVERAGE, "a coverage code (C, D, I, M, S)"),
              ("ACTION CD", ACTIONS, "an action code (A, B, C, D, F, N, P, R, S, T)"))
    for column, allowed, label in checks:
        if cell(column) not in allowed:
            raise _CellError(column, f"{cell(column)[:40]!r} is not {label}")
    if not _BETOS.match(cell("BETOS")):
        raise _CellError("BETOS", f"{cell('BETOS')[:40]!r} is not a BETOS code (e.g. M5D, Z2)")
    dates = {}
    for column in ("ADD DT", "ACT EFF DT", "TERM DT"):
        try:
            dates[column] = _iso(cell(column))
        except ValueError as exc:
            raise _CellError(column, str(exc)) from None
    if not dates["ADD DT"]:
        raise _CellError("ADD DT", "empty: every code has the date it was added")
    if dates["TERM DT"] and dates["TERM DT"] < dates["ADD DT"]:
        raise _CellError("TERM DT", f"{dates['TERM DT']} is before the code was added ({dates['ADD DT']})")
    return code, [long, short, cell("PRICE1"), cell("COV"), cell("BETOS"), dates["ADD DT"],
                  dates["ACT EFF DT"], dates["TERM DT"], cell("ACTION CD"), " ".join(_cross_references(cell))]


def _cross_references(cell: Callable[[str], str]) -> list[str]:
    """The codes a row's XREF1-5 cells name, in order, each once."""
    found: list[str] = []
    for column in XREFS:
        value = cell(column)
        if not value or value == _SEE_CPT:
            continue
        if not _XREF.match(value):
            raise _CellError(column, f"{value[:40]!r} is not a HCPCS or CPT code")
        if value not in found:
            found.append(value)
    return found


def write_hcpcs(payload: dict[str, Any], data_dir: Path, replace: bool = False,
                loaded_from: list[Path] | tuple[Path, ...] = (), source: str = "") -> Path:
    """Write aside and swap in atomically. A key already loaded (in `data_dir` or one of
    `loaded_from`, such as the embedded data) with other content is refused unless `replace`;
    the very content already stored changes nothing. Returns the file that holds it."""
    target = data_dir / "hcpcs" / f"{payload['key']}{SUFFIX}"
    same_elsewhere = None
    for folder in (data_dir, *loaded_from):
        path = folder / "hcpcs" / f"{payload['key']}{SUFFIX}"
        if not path.is_file():
            continue
        try:
            stored = HcpcsFile.read_payload(path)
        except DataFileError as error:
            if replace:
                continue
            raise DataImportError(source or payload["source_name"], ImportProblem(
                0, "", f"{payload['key']} is already stored, and that file is unreadable "
                       f"({error.problem}); pass --replace to overwrite it")) from None
        ignored = {"source_name", CHECKSUM}
        if {k: v for k, v in stored.items() if k not in ignored} == \
                {k: v for k, v in payload.items() if k not in ignored}:
            same_elsewhere = same_elsewhere or (path if path != target else None)
        elif not replace:
            raise DataImportError(source or payload["source_name"], ImportProblem(
                0, "", f"{payload['key']} is already loaded from {path} with other content; "
                       "pass --replace to replace it (or --key to import under another key)"))
    if same_elsewhere is not None and not target.exists():
        return same_elsewhere
    write_json_gz(target, payload)
    return target


@dataclass(frozen=True)
class HcpcsRow:
    """One HCPCS Level II code as CMS lists it."""

    values: dict[str, str]

    def facts(self, key: str) -> dict[str, Any]:
        v = self.values
        return {"on_hcpcs_file": True, "hcpcs_release": key, "hcpcs_add_date": v["add"],
                "hcpcs_action_effective_date": v["act_eff"], "hcpcs_termination_date": v["term"],
                "hcpcs_action_code": v["action"], "hcpcs_coverage_code": v["cov"],
                "hcpcs_pricing_indicator": v["price1"], "hcpcs_betos": v["betos"],
                "hcpcs_long_description": v["long"], "hcpcs_short_description": v["short"],
                "hcpcs_cross_references": v["xref"].split()}

    def replacement(self, key: str) -> tuple[list[str], str, str]:
        """(codes, ISO first date, source) of the codes the file names in place of this one.

        CMS ends a code with its TERM DT and, where another code takes its place, names that
        code in XREF1-5 (C8904 ends 2018-12-31 with XREF 77046). Only an ended code's
        cross-references are its replacement: on a code still open they point to a related code."""
        v = self.values
        codes = v["xref"].split()
        if not v["term"] or not codes:
            return [], "", ""
        first = (dt.date.fromisoformat(v["term"]) + dt.timedelta(days=1)).isoformat()
        return codes, first, (f"CMS HCPCS Level II file {key}: TERM DT {v['term']} and cross-reference "
                              f"(XREF) {', '.join(codes)}")


@dataclass
class HcpcsFile:
    """A loaded HCPCS quarterly file."""

    key: str
    effective: dt.date
    sha256: str
    rows: dict[str, HcpcsRow] = field(default_factory=dict)
    partial: bool = False

    @staticmethod
    def read_payload(path: Path) -> dict[str, Any]:
        """A stored file's content, checked whole (format, schema, checksum, every row's
        shape); DataFileError naming the file and the problem otherwise."""
        payload = read_verified(path, SCHEMA, FORMAT)
        if payload["key"] + SUFFIX != path.name:
            raise DataFileError(str(path), f"holds {payload['key']}, not the file its name says")
        found = _KEY.fullmatch(payload["key"])
        if found and payload["effective"] != f"{found.group(1)}-{_MONTHS[found.group(2)]:02d}-01":
            raise DataFileError(str(path), f"effective {payload['effective']} contradicts its key")
        width = len(FIELDS)
        for code, row in payload["codes"].items():
            if not _CODE.match(code):
                raise DataFileError(str(path), f"codes: {code[:40]!r} is not a HCPCS Level II code")
            if type(row) is not list or len(row) != width or any(type(v) is not str for v in row):
                raise DataFileError(str(path), f"codes/{code}: not {width} text cells")
            if any(not _XREF.match(x) for x in row[-1].split()):
                raise DataFileError(str(path), f"codes/{code}: {row[-1][:40]!r} is not a list of cross-referenced codes")
        return payload

    @classmethod
    def load(cls, path: Path) -> HcpcsFile:
        """Load a compact HCPCS file, checked whole first."""
        payload = cls.read_payload(path)
        keys = payload["fields"]
        return cls(payload["key"], dt.date.fromisoformat(payload["effective"]), payload["sha256"],
                   {code: HcpcsRow(dict(zip(keys, raw))) for code, raw in payload["codes"].items()},
                   payload["partial"])

    def source(self) -> DataSource:
        return DataSource(self.key, f"CMS HCPCS Level II file {self.key}", self.effective.isoformat(),
                          "", self.sha256)


_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "kind", "key", "effective", "sha256", "source_name", "partial", "fields",
                 "codes", CHECKSUM],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "kind": {"const": "hcpcs"},
        "key": {"type": "string", "pattern": "^" + _KEY.pattern + "$"},
        "effective": {"type": "string", "pattern": r"^\d{4}-(01|04|07|10)-01$"},
        "sha256": _HEX64,
        "source_name": {"type": "string"},
        "partial": {"type": "boolean"},
        "fields": {"const": list(FIELDS)},
        "codes": {"type": "object", "minProperties": 1},
        CHECKSUM: _HEX64,
    },
}
