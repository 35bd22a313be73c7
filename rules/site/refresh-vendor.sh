#!/usr/bin/env bash
# Refresh the vendored JavaScript from npm: minisearch (the site's client-side search, copied
# into every exported site) and axe-core (the accessibility checker the browser test injects).
# Usage: rules/site/refresh-vendor.sh [MINISEARCH_VERSION] [AXE_CORE_VERSION]
# Each package's licence is copied beside it; VERSIONS records what is vendored.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
minisearch="${1:-7.2.0}"
axe="${2:-4.14.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "minisearch@$minisearch" "axe-core@$axe" >/dev/null
mkdir minisearch axe
tar xzf "minisearch-$minisearch.tgz" -C minisearch
tar xzf "axe-core-$axe.tgz" -C axe
target="$here/assets/vendor/minisearch"
mkdir -p "$target"
cp minisearch/package/dist/umd/index.js "$target/minisearch.js"
cp minisearch/package/LICENSE.txt "$target/LICENSE.txt"
target="$repo/tests/browser/vendor/axe-core"
mkdir -p "$target"
cp axe/package/axe.min.js axe/package/LICENSE axe/package/LICENSE-3RD-PARTY.txt "$target/"
printf 'minisearch %s\naxe-core %s\n' "$minisearch" "$axe" > "$here/assets/vendor/VERSIONS"
echo "vendored minisearch $minisearch and axe-core $axe"
