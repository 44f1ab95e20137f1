#!/usr/bin/env bash
# Usage: scripts/install-tools.sh [NAME ...]
#
# Builds the pinned client tools in tools/<name>/ (one Go module each, see
# tools/README.md) into a per-machine cache shared by all checkouts:
#
#   ${GALLEY_TOOLS_DIR:-$HOME/.cache/galley/tools}/<name>-<key>/<name>
#
# and links ${GALLEY_TOOLS_DIR}/bin/<name> to the last one built, for use by
# hand. Tools already built for the current pins are skipped, so it is cheap
# to run before every test run. With no NAME, installs every tool.
#
# Safe to run concurrently: each tool is built into a temporary directory and
# renamed into place, under a per-tool lock where flock(1) exists.
# Tools are built one after another; each build uses all cores (go build -p).
# Only files in tools/<name>/ are part of the cache key: flags set in this
# script (CGO_ENABLED=0, -trimpath, -s -w) are not, so changing them here
# needs a new key (e.g. touch a comment in each build.env) unless, like -s -w,
# the change leaves the tool's behaviour alone. -s -w drop the symbol table
# and DWARF: nobody debugs these binaries, and linking the large servers
# (kube-apiserver, argocd) without them is a noticeable part of a cold build.
set -euo pipefail
. "$(dirname "$0")/toolcache.sh"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	mapfile -t names < <(galley_tool_names)
fi
for name in "${names[@]}"; do
	galley_check_tool_name "$name"
done

mkdir -p "$galley_tools_dir/bin" "$galley_tools_dir/.locks"

build_one() {
	local name=$1 path dir tmp start
	path=$(galley_tool_path "$name")
	dir=$(dirname "$path")
	if [ -x "$path" ]; then
		link_bin "$name" "$path"
		return 0
	fi
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$galley_tools_dir/.locks/$name.lock"
		flock 9
		if [ -x "$path" ]; then # built by someone else while we waited
			exec 9>&-
			link_bin "$name" "$path"
			return 0
		fi
	fi
	start=$(date +%s)
	tmp=$(mktemp -d "$galley_tools_dir/.tmp-$name-XXXXXX")
	if ! (
		cd "$galley_tools_src/$name"
		PKG= LDFLAGS= TAGS=
		. ./build.env
		CGO_ENABLED=0 GOWORK=off go build -mod=readonly -trimpath \
			-ldflags "-s -w $LDFLAGS" ${TAGS:+-tags "$TAGS"} -o "$tmp/$name" "$PKG"
	); then
		rm -rf "$tmp"
		exec 9>&-
		echo "install-tools: building $name failed" >&2
		return 1
	fi
	chmod 0755 "$tmp"
	# rename(2) fails if another process won the race; its build is as good.
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		rm -rf "$tmp"
	fi
	exec 9>&-
	link_bin "$name" "$path"
	echo "install-tools: built $name in $(($(date +%s) - start))s" >&2
}

link_bin() {
	local link="$galley_tools_dir/bin/$1" tmp="$galley_tools_dir/bin/.$1.$$"
	ln -sfn "$2" "$tmp"
	mv -f "$tmp" "$link"
}

status=0
for name in "${names[@]}"; do
	build_one "$name" || status=1
done
exit $status
