#!/usr/bin/env bash
# make fuzz: run every fuzz target for FUZZTIME (default 30s) each.
# FUZZPKG=./homeserver/sync/ (a package pattern) narrows it. The seed
# corpora of all targets also run as ordinary tests in `make test`; see
# docs/FAULTS.md for why make test does not fuzz. A failing input is
# written to the package's testdata/fuzz/ (keep it, with the fix).
set -euo pipefail
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list "${FUZZPKG:-./...}"); do
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "== $pkg $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "${FUZZTIME:-30s}" "$pkg"
		n=$((n + 1))
	done
done
echo "$n fuzz targets passed"
