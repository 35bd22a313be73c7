"""The exported site as a reader sees it: served over HTTP on a loopback port and opened in the
system's headless Chromium (Debian's `chromium`, driven by Playwright; no browser download)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urldefrag

import pytest

from cptrules.export.site import ExportOptions, export_site

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DAY = dt.date(2025, 11, 1)
# The 0554T-0558T family and a few codes of each loaded category.
SAMPLE = ["0554T", "0555T", "0556T", "0557T", "0558T", "0042T", "99213", "27447", "71046", "1036F", "0001F",
          "0001U", "G0463", "J1100"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed here (/usr/bin/chromium); "
                                       ".ci/run installs it, so this test runs in CI")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(engine, tmp_path_factory):
    """The sample exported as HTML and served on a free loopback port."""
    out = tmp_path_factory.mktemp("site")
    export_site(engine, ExportOptions(out, codes=SAMPLE, dos=DAY, base_url="https://codes.example.org/"))
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A page that records console errors and uncaught exceptions."""
    context = browser.new_context()
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    context.close()


def _csv_row(cms_dir: Path, code: str) -> dict[str, str]:
    """The code's global row in CMS's RVU25D CSV, by the header names of its last caption row."""
    with open(cms_dir / "PPRRVU2025_Oct.csv", newline="", encoding="ascii") as handle:
        rows = list(csv.reader(handle))
    header = next(i for i, r in enumerate(rows) if r[:2] == ["HCPCS", "MOD"])
    captions = [" ".join(rows[i][c].strip() for i in range(header - 4, header + 1) if rows[i][c].strip())
                for c in range(len(rows[header]))]
    for row in rows[header + 1:]:
        if row[0] == code and row[1] == "":
            return dict(zip(captions, row))
    raise AssertionError(f"{code} not in the CSV")


def test_the_code_page_renders_the_files_figures_and_the_engines_answers(site, page, stub, cms_dir, tmp_path):
    from google.type import date_pb2

    from cptrules.v1 import code_rules_service_pb2 as svc

    out, base = site
    page.goto(base + "codes/99213.html")
    assert page.locator("h1").count() == 1
    cells = {c.get_attribute("data-field"): c.inner_text() for c in page.locator("table.rvu td[data-field]").all()}
    row = _csv_row(cms_dir, "99213")
    assert cells["work_rvu"] == row["WORK RVU"] == "1.30"
    assert cells["non_facility_pe_rvu"] == row["NON-FAC PE RVU"]
    assert cells["facility_pe_rvu"] == row["FACILITY PE RVU"]
    assert cells["mp_rvu"] == row["MP RVU"]
    assert cells["non_facility_total_rvu"] == row["NON-FACILITY TOTAL"]
    assert cells["facility_total_rvu"] == row["FACILITY TOTAL"]
    assert page.locator("table.rvu th[scope=col]").count() == 3
    assert page.errors == []

    page.goto(base + "codes/0556T.html")
    seen = page.evaluate("JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)")
    assert seen["@type"] == "FAQPage" and seen["@context"] == "https://schema.org"
    faq = stub.GetFaq(svc.GetFaqRequest(code="0556T", date_of_service=date_pb2.Date(year=2025, month=11, day=1)))
    assert [(q["name"], q["acceptedAnswer"]["text"]) for q in seen["mainEntity"]] == \
        [(e.question, e.text) for e in faq.entries]
    assert all(q["@type"] == "Question" and q["name"] and q["acceptedAnswer"]["text"] for q in seen["mainEntity"])
    text = page.inner_text("body")
    assert "CPT® is a trademark of the American Medical Association (AMA), registered" in text
    assert "RVU25D" in text
    assert page.errors == []
    shot = tmp_path / "0556T.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    artifacts = os.environ.get("CPTRULES_TEST_ARTIFACTS")  # CI keeps the screenshot there
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, Path(artifacts) / "export-site-0556T.png"))
    print(f"screenshot of the 0556T page: {shot}")


def test_no_cpt_descriptor_appears_in_any_page(site, cms_dir):
    """The AMA descriptors of the sampled CPT codes appear nowhere in the export."""
    out, _ = site
    text = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.suffix in (".html", ".json", ".xml"))
    for code in ("99213", "27447", "71046", "0556T", "1036F"):
        descriptor = _csv_row(cms_dir, code)["DESCRIPTION"]
        assert descriptor and descriptor not in text, code


def test_every_link_between_pages_resolves(site, page):
    out, base = site
    start = [base + p for p in ("index.html", "codes/0556T.html", "category/CATEGORY_III.html", "a-z/index.html",
                                "a-z/0.html", "glossary/index.html", "glossary/status-indicators.html",
                                "changes.html")]
    checked: set[str] = set()
    for url in start:
        page.goto(url)
        assert page.locator("h1").count() == 1, url
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urljoin(url, href)
            if target in checked or not target.startswith(base):
                continue
            checked.add(target)
            document, fragment = urldefrag(target)
            response = page.request.get(document)
            assert response.status == 200, f"{url} links to {href}: HTTP {response.status}"
            if fragment and document != urldefrag(url)[0]:
                assert f'id="{fragment}"' in response.text(), f"{url} links to a missing anchor {href}"
    assert len(checked) > 30
    assert page.errors == []


def test_search_finds_0556T_by_a_synonym(site, page):
    _, base = site
    page.goto(base + "index.html")
    page.fill("#search-input", "VirtuOst")
    page.click("button[type=submit]")
    page.wait_for_selector("#search-results li")
    found = page.eval_on_selector_all("#search-results a", "els => els.map(e => e.textContent)")
    assert "0556T" in found
    assert "99213" not in found
    assert re.search(r"\d+ results? for", page.inner_text("#search-status"))
    assert page.errors == []


def test_axe_finds_no_serious_accessibility_violation(site, page):
    """One page of each kind (the A-Z and category lists share a template)."""
    _, base = site
    for path in ("index.html", "codes/0556T.html", "category/CATEGORY_III.html",
                 "glossary/status-indicators.html", "changes.html"):
        page.goto(base + path)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], path
    assert page.errors == []


def test_headings_are_in_order_and_the_page_prints(site, page):
    _, base = site
    page.goto(base + "codes/0556T.html")
    levels = page.eval_on_selector_all("h1, h2, h3, h4, h5, h6", "els => els.map(e => Number(e.tagName[1]))")
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:]))
    assert page.evaluate("document.documentElement.lang") == "en"
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('header.site')).display") == "none"
    sitemap = json.dumps(page.request.get(base + "sitemap.xml").text())
    assert "https://codes.example.org/codes/0556T.html" in sitemap
