"""All loaded code data behind one lookup: which sources know a code, and its base facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFileError
from ..facts import empty_facts
from ..provenance import DataSource
from .catalogue import Catalogue
from .files import SUFFIX, data_files
from .hcpcs import HcpcsFile
from .locality import LocalityData, Place
from .pfs import PfsRelease, load_descriptors


@dataclass
class CodeData:
    """Fee-schedule releases (oldest first), HCPCS files and the curated catalogue."""

    releases: list[PfsRelease] = field(default_factory=list)
    hcpcs_files: list[HcpcsFile] = field(default_factory=list)
    catalogue: Catalogue = field(default_factory=lambda: Catalogue(""))
    localities: LocalityData = field(default_factory=LocalityData)
    # CPT short descriptors the user imported from their own RVU file: code → (text, release).
    cpt_descriptors: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, folders: list[Path]) -> CodeData:
        """Read every data folder; a later folder's release replaces an earlier one of the same key.

        A folder that does not exist holds nothing yet; one that is a file, and any stored file
        that is damaged, raises DataFileError naming it. Hidden and temporary files are never read.
        """
        releases: dict[str, PfsRelease] = {}
        hcpcs: dict[str, HcpcsFile] = {}
        catalogue = Catalogue("")
        descriptors: dict[str, tuple[str, str]] = {}
        for folder in folders:
            check_folder(folder)
            for path in data_files(folder / "pfs"):
                release = PfsRelease.load(path)
                releases[release.key] = release
            for path in data_files(folder / "hcpcs"):
                file = HcpcsFile.load(path)
                hcpcs[file.key] = file
            for key, texts in load_descriptors(folder):
                descriptors.update((code, (text, key)) for code, text in texts.items())
            if (folder / "catalogue.yaml").is_file():
                loaded = Catalogue.load(folder / "catalogue.yaml")
                catalogue = Catalogue(loaded.version or catalogue.version,
                                      {**catalogue.entries, **loaded.entries})
        localities = LocalityData()
        for folder in folders:
            LocalityData.load_folder(folder, localities)
        return cls(sorted(releases.values(), key=lambda r: (r.effective, r.key)),
                   sorted(hcpcs.values(), key=lambda h: (h.effective, h.key)), catalogue, localities,
                   descriptors)

    def release_for(self, dos: dt.date) -> PfsRelease | None:
        """The release in force on a date of service, or None.

        A release is in force from its effective date until the next loaded release,
        and never past the calendar year it prices: a 2025 release says nothing about 2026.
        """
        candidates = [r for r in self.releases if r.effective <= dos]
        if not candidates or candidates[-1].year != dos.year:
            return None
        return candidates[-1]

    def release_with(self, code: str, dos: dt.date) -> PfsRelease | None:
        """The newest release in effect on the date that lists the code: the reference figures
        shown, clearly labelled, when no release speaks for the code on the date."""
        for release in reversed(self.releases):
            if release.effective <= dos and (code in release.rows or code in release.modifiers):
                return release
        return None

    def hcpcs_for(self, dos: dt.date) -> tuple[HcpcsFile | None, bool]:
        """The HCPCS file that speaks for a date, and whether it covers it.

        The newest file in effect is used; it covers dates of its own calendar year (the
        next January's file adds and ends codes). A date before every file of its year is
        answered from that year's earliest file, whose add and termination dates cover the
        months before it. A file's termination and add dates stay true outside its year.
        """
        candidates = [h for h in self.hcpcs_files if h.effective <= dos]
        if candidates:
            return candidates[-1], candidates[-1].effective.year == dos.year
        same_year = next((h for h in self.hcpcs_files if h.effective.year == dos.year), None)
        if same_year is not None:
            return same_year, True
        return (self.hcpcs_files[0], False) if self.hcpcs_files else (None, False)

    def knows(self, code: str) -> bool:
        """True when any loaded source lists the code."""
        return (code in self.catalogue.entries
                or any(code in r.rows or code in r.modifiers for r in self.releases)
                or any(code in h.rows for h in self.hcpcs_files))

    def codes(self) -> list[str]:
        """Every code any source lists, sorted."""
        found: set[str] = set(self.catalogue.entries)
        for release in self.releases:
            found.update(release.rows)
            found.update(release.modifiers)
        for file in self.hcpcs_files:
            found.update(file.rows)
        return sorted(found)

    def source_names(self) -> list[str]:
        """Short names of the loaded sources, for messages."""
        names = [f"CMS PFS {r.key}" for r in self.releases]
        names += [f"CMS HCPCS {h.key}" for h in self.hcpcs_files]
        if self.catalogue.entries:
            names.append("the curated catalogue")
        return names

    def sources(self) -> list[DataSource]:
        """Every loaded release as a DataSource."""
        found = [pfs_source(r) for r in self.releases]
        found += [h.source() for h in self.hcpcs_files]
        if self.catalogue.entries:
            found.append(catalogue_source(self.catalogue))
        return found

    def base_facts(self, code: str, dos: dt.date, modifier: str = "",
                   place: Place | None = None) -> tuple[dict[str, Any], list[DataSource]]:
        """The base fact record for a code on a date, and the sources it drew on.

        The date of service is always a date: a request without one is answered for today,
        with exactly the facts an explicit request for today gets (nothing else depends on
        the clock, so two dates of one date class get the same facts but the date itself). Fee-schedule facts come
        from the release in force when it speaks for the code, else from the newest earlier
        release that lists it, for reference, with pfs_covers_date false. With a modifier
        that has its own row (26, TC, 53), the fee-schedule facts are that row's. With a
        place (a resolved ZIP or locality), the locality's GPCIs of the release's year join.
        """
        facts = empty_facts()
        facts.update(code=code, date_of_service=dos.isoformat(), modifier_requested=modifier)
        used: list[DataSource] = []
        in_force = self.release_for(dos)
        release = in_force
        covers = in_force is not None
        if in_force is not None:
            facts.update(pfs_release_in_force=in_force.key, pfs_partial=in_force.partial)
            if facts["pfs_partial"] and code not in in_force.rows and code not in in_force.modifiers:
                release, covers = None, False  # a partial release says nothing about codes it lacks
        if release is None:
            release = self.release_with(code, dos)
            covers = False
        if release is not None:
            facts.update(pfs_release=release.key, pfs_release_effective=release.effective.isoformat(),
                         pfs_covers_date=covers, conversion_factor=release.conversion_factor,
                         qp_conversion_factor=release.qp_conversion_factor, pfs_release_year=release.year)
            self._fee_schedule_row(facts, release, code, modifier)
            used.append(pfs_source(release))
        newest = next((r for r in reversed(self.releases) if code in r.rows or code in r.modifiers), None)
        if newest is not None:
            facts.update(pfs_newest_listing=newest.key, pfs_newest_listing_effective=newest.effective.isoformat())
            if newest is not release:
                used.append(pfs_source(newest))
        hcpcs, hcpcs_covers = self.hcpcs_for(dos)
        if hcpcs is not None and code in hcpcs.rows:
            facts.update(hcpcs.rows[code].facts(hcpcs.key))
            facts["hcpcs_covers_date"] = hcpcs_covers
            used.append(hcpcs.source())
        described = self.cpt_descriptors.get(code)
        if described is not None:
            facts.update(cpt_short_descriptor=described[0], cpt_short_descriptor_release=described[1])
            used.append(descriptors_source(described[1]))
        entry = self.catalogue.entries.get(code)
        if entry is not None:
            facts.update(entry.facts())
            used.append(catalogue_source(self.catalogue))
        if hcpcs is not None and code in hcpcs.rows and not facts["replaced_by"]:
            # The curated replacement, where there is one, is the stated one; else the HCPCS
            # file's own: an ended code's cross-references.
            codes, first, source = hcpcs.rows[code].replacement(hcpcs.key)
            if codes:
                facts.update(replaced_by=codes, replaced_from=first, replaced_source=source,
                             lifecycle_sources=[*facts["lifecycle_sources"], f"replacement {first}: {source}"])
        if place is not None:
            used += self.localities.place_facts(facts, place, code)
        return facts, used

    @staticmethod
    def _fee_schedule_row(facts: dict[str, Any], release: PfsRelease, code: str, modifier: str) -> None:
        """The row facts of one release: the global row, the asked-for modifier's row, or, for
        codes priced only by component (86153 has just a 26 row), the first modifier row."""
        row = release.rows.get(code)
        by_modifier = {r["mod"]: r for r in release.modifier_rows.get(code, [])}
        facts["modifier_rows"] = list(by_modifier)
        facts["paid_modifier_rows"] = [m for m, r in by_modifier.items()
                                       if r["status"] in "ART" and float(r["nf_total"]) + float(r["f_total"]) > 0]
        professional = by_modifier.get("26")
        if professional is not None:
            facts.update(professional_row_status=professional["status"],
                         professional_row_work_rvu=professional["work"],
                         professional_row_non_facility_total_rvu=professional["nf_total"],
                         professional_row_facility_total_rvu=professional["f_total"])
        if modifier in by_modifier:
            row = by_modifier[modifier]
            facts["pfs_row_modifier"] = modifier
        elif row is None and by_modifier:
            row = next(iter(by_modifier.values()))
            facts["pfs_row_modifier"] = row["mod"]
            facts["pfs_component_only"] = True
        if row is not None:
            facts.update(
                on_fee_schedule=True, status_indicator=row["status"],
                not_used_for_payment=row["not_used"] == "+", work_rvu=row["work"],
                non_facility_pe_rvu=row["nf_pe"], facility_pe_rvu=row["f_pe"], mp_rvu=row["mp"],
                non_facility_total_rvu=row["nf_total"], facility_total_rvu=row["f_total"],
                non_facility_na=row["nf_na"] == "NA", facility_na=row["f_na"] == "NA",
                global_days=row["global"], pctc_indicator=row["pctc"],
                conversion_factor=row["cf"] or release.conversion_factor,
                mult_proc_indicator=row["mult"], bilateral_indicator=row["bilat"],
                assistant_indicator=row["asst"], co_surgeon_indicator=row["co"],
                team_surgery_indicator=row["team"], endoscopic_base_code=row["endo"],
                supervision_indicator=row["supv"], imaging_family_indicator=row["dif"],
                pre_op_share=row["pre"] or 0.0, intra_op_share=row["intra"] or 0.0,
                post_op_share=row["post"] or 0.0)


def pfs_source(release: PfsRelease) -> DataSource:
    return DataSource(release.key, f"CMS Physician Fee Schedule {release.key}",
                      release.effective.isoformat(), release.released, release.sha256)


def descriptors_source(release: str) -> DataSource:
    return DataSource(f"{release}-cpt-descriptors",
                      f"CPT short descriptors © American Medical Association, from your imported file ({release})")


def catalogue_source(catalogue: Catalogue) -> DataSource:
    return DataSource(f"catalogue-{catalogue.version}", f"cptrules curated catalogue {catalogue.version}")


def check_folder(folder: Path) -> None:
    """A data folder that exists must be a directory, and so must its pfs/ and hcpcs/."""
    for path in (folder, folder / "pfs", folder / "hcpcs"):
        if path.exists() and not path.is_dir():
            raise DataFileError(str(path), "is a file where a data folder belongs")


@dataclass(frozen=True)
class ImportedFile:
    """One imported data file in a data directory; `problem` says why a damaged one cannot load."""

    kind: str
    key: str
    effective: str
    sha256: str
    path: Path
    partial: bool = False
    problem: str = ""


def list_imports(folder: Path) -> list[ImportedFile]:
    """Every fee-schedule and HCPCS file imported into a data directory, each checked whole;
    a damaged file is listed under its file name with the problem found."""
    check_folder(folder)
    found = []
    for kind, reader in (("pfs", PfsRelease.read_payload), ("hcpcs", HcpcsFile.read_payload)):
        for path in data_files(folder / kind):
            try:
                payload = reader(path)
            except DataFileError as error:
                found.append(ImportedFile(kind, path.name[: -len(SUFFIX)], "", "", path,
                                          problem=error.problem))
                continue
            found.append(ImportedFile(kind, payload.get("release") or payload["key"], payload["effective"],
                                      payload["sha256"], path, bool(payload.get("partial"))))
    return found


def remove_import(folder: Path, key: str) -> Path:
    """Delete one imported file by its key (a damaged one by its file name); KeyError when none."""
    for item in list_imports(folder):
        if item.key == key:
            item.path.unlink()
            return item.path
    raise KeyError(key)
