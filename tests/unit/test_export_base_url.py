"""`cptrules export --base-url`: only an absolute http(s) URL without query or fragment is
written into sitemap.xml, normalised to one trailing slash and XML-escaped there."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cptrules.cli import main
from cptrules.errors import InvalidInputError
from cptrules.export.base_url import site_base_url
from cptrules.export.site import ExportOptions, export_site

DAY = dt.date(2025, 11, 1)


@pytest.mark.parametrize("given_url, normalised", [
    ("https://codes.example.org", "https://codes.example.org/"),
    ("HTTPS://Codes.Example.ORG/faq//", "https://codes.example.org/faq/"),
    ("http://example.org:8080/site", "http://example.org:8080/site/"),
    ("https://[::1]:8443/a", "https://[::1]:8443/a/"),
    ("https://example.org/a&b/", "https://example.org/a&b/"),
])
def test_a_base_url_is_normalised(given_url, normalised):
    assert site_base_url(given_url) == normalised


@pytest.mark.parametrize("bad, says", [
    ("/", "not an absolute http:// or https:// URL"),
    ("codes.example.org", "not an absolute http:// or https:// URL"),
    ("javascript:alert(1)", "not an absolute http:// or https:// URL"),
    ("ftp://example.org/", "not an absolute http:// or https:// URL"),
    ("https:example.org/", "not an absolute http:// or https:// URL"),
    ("https://example.org/?page=1", "has a query or fragment"),
    ("https://example.org/#top", "has a query or fragment"),
    ("https://user:secret@example.org/", "user name or password"),
    ("https:///faq/", "has no host name"),
    ("https://example.org:99999/", "port"),
    ("https://example.org/a b/", "characters a URL cannot"),
    ('https://example.org/"><x>/', "characters a URL cannot"),
    ("https://example.org/%zz/", "% that is not followed by two hex digits"),
    ("https://example.org/" + "a" * 1100, "longer than 1024 characters"),
    ("http://[", "an unclosed"),
    ("https://[::1/", "an unclosed"),
])
def test_a_bad_base_url_is_refused_naming_the_field(bad, says):
    with pytest.raises(InvalidInputError, match=says) as raised:
        site_base_url(bad)
    assert raised.value.field == "base_url" and raised.value.reason == "INVALID_BASE_URL"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.builds(lambda scheme, rest: scheme + rest,
                                         st.sampled_from(["http://", "https://", "HTTP://", "https:",
                                                          "http://[", "https://]"]),
                                         st.text(max_size=40)))
def test_any_text_is_refused_or_gives_a_usable_base(text):
    try:
        base = site_base_url(text)
    except InvalidInputError as error:
        assert error.field == "base_url" and "\n" not in error.message
        return
    parts = urlsplit(base)
    assert parts.scheme in ("http", "https") and parts.hostname
    assert base.endswith("/") and not base.endswith("//") and "?" not in base and "#" not in base
    assert site_base_url(base) == base


def test_the_command_refuses_a_bad_base_url_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["export", str(tmp_path / "site"), "--codes", "0556T", "--base-url", "https://example.org/?x=<y>"])
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == ["cptrules export: error: argument --base-url: base URL 'https://example.org/?x=<y>' "
                      "holds characters a URL cannot (spaces, quotes, <, > or non-ASCII): percent-encode them"]
    assert not (tmp_path / "site").exists()


def test_the_sitemap_holds_absolute_escaped_addresses(engine, tmp_path):
    out = tmp_path / "site"
    export_site(engine, ExportOptions(out, codes=["0556T"], dos=DAY, base_url="HTTPS://Codes.Example.org/a&b"))
    text = (out / "sitemap.xml").read_text()
    assert "<loc>https://codes.example.org/a&amp;b/codes/0556T.html</loc>" in text
    locs = [e.text for e in ET.fromstring(text).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert locs and all(loc.startswith("https://codes.example.org/a&b/") for loc in locs)


def test_without_a_base_url_no_sitemap_is_written_and_a_bad_one_writes_nothing(engine, tmp_path):
    plain = tmp_path / "plain"
    export_site(engine, ExportOptions(plain, codes=["0556T"], dos=DAY))
    assert (plain / "codes" / "0556T.html").is_file() and not (plain / "sitemap.xml").exists()
    bad = tmp_path / "bad"
    with pytest.raises(InvalidInputError, match="not an absolute http"):
        export_site(engine, ExportOptions(bad, codes=["0556T"], dos=DAY, base_url="javascript:alert(1)//"))
    assert not bad.exists()
