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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataImportError, ImportProblem
from ..provenance import DataSource
from .files import read_json_gz, write_json_gz

REQUIRED = ("HCPC", "RECID", "LONG DESCRIPTION", "SHORT DESCRIPTION", "PRICE1", "COV", "BETOS",
            "ADD DT", "ACT EFF DT", "TERM DT", "ACTION CD")
FIELDS = ("long", "short", "price1", "cov", "betos", "add", "act_eff", "term", "action")
_NAME = re.compile(r"HCPC(\d{4})_?([A-Z]{3})", re.IGNORECASE)
_KEY = re.compile(r"HCPC(\d{4})_(JAN|APR|JUL|OCT)")
_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
_CODE = re.compile(r"^[A-Z]\d{4}$")


def _iso(cell: str) -> str:
    """CMS's YYYYMMDD as an ISO date; ValueError for anything that is not a calendar date."""
    if not cell:
        return ""
    if len(cell) != 8 or not cell.isdigit():  # strptime alone would read 2025063 as June 3
        raise ValueError(cell)
    return dt.datetime.strptime(cell, "%Y%m%d").date().isoformat()


def _rows_from(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = [["" if c is None else str(c) for c in r] for r in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def import_hcpcs(path: Path, key: str | None = None) -> dict[str, Any]:
    """Parse and check a HCPCS file; refuse it whole with line and column on any problem."""
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
        if row[at["RECID"]].strip() != "3":
            continue
        code = row[at["HCPC"]].strip()
        if not _CODE.match(code):
            raise refuse(line, "HCPC", f"{code!r} is not a HCPCS Level II code")
        dates = {}
        for col in ("ADD DT", "ACT EFF DT", "TERM DT"):
            cell = row[at[col]].strip()
            try:
                dates[col] = _iso(cell)
            except ValueError:
                raise refuse(line, col, f"{cell!r} is not a YYYYMMDD calendar date") from None
        codes[code] = [row[at["LONG DESCRIPTION"]].strip(), row[at["SHORT DESCRIPTION"]].strip(),
                       row[at["PRICE1"]].strip(), row[at["COV"]].strip(), row[at["BETOS"]].strip(),
                       dates["ADD DT"], dates["ACT EFF DT"], dates["TERM DT"], row[at["ACTION CD"]].strip()]
    if not codes:
        raise refuse(len(rows), "", "no procedure rows (RECID 3)")
    return {"format": 1, "kind": "hcpcs", "key": key, "effective": effective.isoformat(),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source_name": path.name,
            "fields": list(FIELDS), "codes": dict(sorted(codes.items()))}


def write_hcpcs(payload: dict[str, Any], data_dir: Path) -> Path:
    """Write aside and swap in atomically."""
    target = data_dir / "hcpcs" / f"{payload['key']}.json.gz"
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
                "hcpcs_long_description": v["long"], "hcpcs_short_description": v["short"]}


@dataclass
class HcpcsFile:
    """A loaded HCPCS quarterly file."""

    key: str
    effective: dt.date
    sha256: str
    rows: dict[str, HcpcsRow] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> HcpcsFile:
        payload = read_json_gz(path)
        keys = payload["fields"]
        return cls(payload["key"], dt.date.fromisoformat(payload["effective"]), payload["sha256"],
                   {code: HcpcsRow(dict(zip(keys, raw))) for code, raw in payload["codes"].items()})

    def source(self) -> DataSource:
        return DataSource(self.key, f"CMS HCPCS Level II file {self.key}", self.effective.isoformat(),
                          "", self.sha256)
