#!/usr/bin/env bash
# make bench: every Go benchmark of the project, over real HTTP / UDP where
# the benchmark says so, against both storage backends. PostgreSQL comes
# from SALON_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
# Figures go into docs/PERFORMANCE.md by hand, with the machine and date.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
go test -run '^$' -bench . -benchtime "${BENCHTIME:-3s}" -count "${COUNT:-1}" ./...
for s in scripts/bench-*.sh; do
	[ -x "$s" ] && "$s"
done
