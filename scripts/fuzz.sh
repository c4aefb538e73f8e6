#!/usr/bin/env bash
# make fuzz: run every fuzz target for FUZZTIME (default 30s) each.
# FUZZPKG=./homeserver/sync/ (a package pattern) narrows it.
#
# scripts/fuzz.sh --brief (make fuzz-brief, part of make test): every target for
# BRIEF_FUZZTIME (default 2000x: 2,000 executions) each, after the seed
# corpora have run as ordinary tests. docs/FAULTS.md has what it costs.
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" failure when a duration -fuzztime ends while a
# worker is busy (go.dev/issue/75804, fixed in Go 1.27); a count has no
# deadline to race.
#
# A failing input is written to the package's testdata/fuzz/ (keep it,
# with the fix). New interesting inputs stay in Go's fuzz cache.
#
# Targets are found in the sources (func FuzzXxx in *_test.go), not with
# go test -list, which would link a test binary of every package.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-30s}"
if [ "${1:-}" = "--brief" ]; then
	fuzztime="${BRIEF_FUZZTIME:-2000x}"
elif [ $# -gt 0 ]; then
	echo "usage: $0 [--brief]" >&2
	exit 2
fi

if [ -n "${FUZZPKG:-}" ]; then
	mapfile -t dirs < <(go list -f '{{.Dir}}' "$FUZZPKG" | sed "s|^$PWD|.|")
else
	dirs=(.)
fi

# "./pkg/dir FuzzName" lines, sorted so that runs are alike.
targets=$(for d in "${dirs[@]}"; do
	if [ "$d" = . ]; then
		grep -rEo --include='*_test.go' --exclude-dir=node_modules --exclude-dir=testdata --exclude-dir=.git \
			'^func Fuzz[A-Za-z0-9_]*\(' . || true
	else
		grep -Eo '^func Fuzz[A-Za-z0-9_]*\(' "$d"/*_test.go /dev/null || true
	fi
done | sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' | sort -u)

n=0
start=$SECONDS
while read -r pkg f; do
	[ -n "$pkg" ] || continue
	echo "== $pkg $f"
	go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg/" </dev/null
	n=$((n + 1))
done <<<"$targets"
echo "$n fuzz targets passed ($fuzztime each, $((SECONDS - start))s in all)"
