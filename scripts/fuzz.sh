#!/usr/bin/env bash
# Usage: scripts/fuzz.sh PACKAGE TARGET [FUZZTIME]
#
# Runs one fuzz target for FUZZTIME (default 8s). Go 1.26's fuzz coordinator
# can report "context deadline exceeded" as a failure when -fuzztime expires
# while a worker is still running an input (golang/go#75804, fixed in Go
# 1.27): on a loaded 2-core CI machine that is a flake, not a finding. A real
# finding always writes its input under testdata/fuzz/TARGET/ and says
# "Failing input written to"; so a failure is tolerated only when it is that
# bare deadline message and no new input file appeared. Every other failure
# fails.
set -uo pipefail
pkg=$1 target=$2 fuzztime=${3:-8s}
go=${GO:-go}
corpus="$pkg/testdata/fuzz/$target"

list() { find "$corpus" -type f 2>/dev/null | LC_ALL=C sort; }
before=$(list)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && exit 0

after=$(list)
if [ "$before" = "$after" ] &&
	grep -q 'context deadline exceeded' "$out" &&
	! grep -qE 'Failing input written|panic:' "$out" &&
	[ "$(grep -cE '^\s+\S+_test\.go:[0-9]+:' "$out")" -eq 0 ]; then
	echo "fuzz.sh: $target stopped with Go's fuzztime deadline race (golang/go#75804), no failing input; counted as a pass" >&2
	exit 0
fi
exit "$status"
