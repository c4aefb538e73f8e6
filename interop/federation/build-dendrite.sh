#!/bin/sh
# Builds Dendrite v0.13.8 (github.com/matrix-org/dendrite, a Go homeserver
# nobody here wrote) as a test tool for the federation interop tests. It is
# built outside this repository, from the Go module proxy, into a cache
# directory; it is never a dependency of Salon's go.mod.
#
#   interop/federation/build-dendrite.sh      # prints the directory of the binaries
#
# DENDRITE_VERSION (default v0.13.8) and SALON_INTEROP_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/salon-interop) override the defaults.
# Dendrite's SQLite driver needs cgo: gcc is installed from Debian when it is
# missing (as root, or through sudo).
set -eu
version=${DENDRITE_VERSION:-v0.13.8}
cache=${SALON_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salon-interop}
bin="$cache/dendrite-$version"
log() { echo "build-dendrite: $*" >&2; }

if [ -x "$bin/dendrite" ] && [ -x "$bin/generate-keys" ] && [ -x "$bin/generate-config" ]; then
	echo "$bin"
	exit 0
fi

if ! command -v gcc >/dev/null 2>&1; then
	log "installing Debian's gcc (Dendrite's SQLite driver needs cgo)"
	if [ "$(id -u)" = 0 ]; then
		apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y gcc libc6-dev >&2
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y gcc libc6-dev >&2
	else
		log "install gcc (apt-get install -y gcc libc6-dev)"
		exit 1
	fi
fi

mkdir -p "$cache"
start=$(date +%s)
log "building github.com/matrix-org/dendrite@$version into $bin"
# Outside any module: no go.work, no replace directives of ours, and none of
# the caller's GOFLAGS (-mod=vendor and the like) leak in.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$bin.tmp.$$"' EXIT INT TERM
cd "$tmp"
mkdir -p "$bin.tmp.$$"
if ! GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=1 GOBIN="$bin.tmp.$$" GOTOOLCHAIN=${GOTOOLCHAIN:-local} \
	go install "github.com/matrix-org/dendrite/cmd/dendrite@$version" \
	"github.com/matrix-org/dendrite/cmd/generate-keys@$version" \
	"github.com/matrix-org/dendrite/cmd/generate-config@$version" >&2; then
	# `go install pkg@version` refuses a module whose go.mod has replace
	# directives (v0.13.8 has none): build from a copy of the downloaded
	# module instead.
	log "go install pkg@$version failed; building from a copy of the module"
	dir=$(GOWORK=off GOFLAGS= go mod download -json "github.com/matrix-org/dendrite@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { log "go mod download gave no directory"; exit 1; }
	cp -r "$dir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	(cd "$tmp/src" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=1 GOBIN="$bin.tmp.$$" go install ./cmd/dendrite ./cmd/generate-keys ./cmd/generate-config >&2)
fi
rm -rf "$bin"
mv "$bin.tmp.$$" "$bin"
log "built in $(($(date +%s) - start))s"
echo "$bin"
