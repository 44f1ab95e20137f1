#!/usr/bin/env bash
# Usage: scripts/tool-path.sh NAME
# Prints the path of the installed tool NAME, or exits 1 if it is not built
# for the current pins (run scripts/install-tools.sh NAME).
set -euo pipefail
. "$(dirname "$0")/toolcache.sh"

if [ $# -ne 1 ]; then
	echo "usage: $0 NAME" >&2
	exit 2
fi
galley_check_tool_name "$1"
path=$(galley_tool_path "$1")
if [ ! -x "$path" ]; then
	echo "$1 not installed at $path: run scripts/install-tools.sh $1" >&2
	exit 1
fi
printf '%s\n' "$path"
