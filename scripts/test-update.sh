#!/usr/bin/env bash
# Usage: scripts/test-update.sh [go test args...]
#
# Runs the test suite once with GALLEY_UPDATE=1, so every golden file and
# testscript expectation is rewritten from what the code produces now (all
# other assertions still fail as usual), then fails if that changed
# anything in the work tree: an expectation nobody regenerated is a
# failure, not a silent pass. This is `git diff --exit-code` (plus new
# untracked files) relative to the tree as it was before the run, so it
# also works in a checkout with uncommitted edits. It costs no second run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "test-update: not a git work tree: cannot tell whether the update changes anything" >&2
	exit 2
fi
snapshot() {
	git diff --no-ext-diff --binary
	git ls-files --others --exclude-standard
}
before=$(snapshot | sha256sum)
status=0
GALLEY_UPDATE=1 "${GO:-go}" test "$@" || status=$?
after=$(snapshot | sha256sum)
if [ "$before" != "$after" ]; then
	echo >&2
	echo "test-update: the tests rewrote expectations that the code no longer matches:" >&2
	git status --short >&2
	git diff --stat >&2
	echo "review the change (git diff); commit it if it is intended" >&2
	exit 1
fi
exit $status
