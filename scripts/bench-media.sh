#!/usr/bin/env bash
# The media repository's transfer benchmark: upload and download 1 GiB over
# loopback to a separate server process (homeserver/media/internal/benchserver)
# and report MB/s and the server's peak RSS above idle (VmHWM, /proc).
# The thumbnail benchmarks are Go benchmarks that `make bench` runs:
#   go test -run '^$' -bench Thumbnail12MP -benchtime 3s ./homeserver/media/
# SALON_BENCH_MEDIA_BYTES changes the size. Figures go into
# docs/PERFORMANCE.md by hand, with the machine and date.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
SALON_BENCH_MEDIA=1 go test -run '^TestBigFile$' -count=1 -v -timeout 30m ./homeserver/media/ | grep -E '^(bench media|--- |ok|FAIL)'
