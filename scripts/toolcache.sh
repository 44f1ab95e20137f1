# shellcheck shell=bash
# Sourced by install-tools.sh and tool-path.sh. The layout here must match
# internal/testtools (Go), which finds the same binaries:
#
#   ${GALLEY_TOOLS_DIR:-$HOME/.cache/galley/tools}/<name>-<key>/<name>
#
# where <key> is the first 12 hex digits of the SHA-256 of the lines
# "<sha256 of file>  <file>\n" for build.env, go.mod, go.sum and *.go in
# tools/<name>/, in byte order. Everything that decides what gets built lives
# in those files, so a changed pin gives a new directory and a clean checkout
# of the same pins reuses the old one.

galley_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
galley_tools_src="$galley_root/tools"
galley_tools_dir="${GALLEY_TOOLS_DIR:-$HOME/.cache/galley/tools}"
case $galley_tools_dir in
/*) ;;
*)
	# Tests run in package directories: a relative path would differ there.
	echo "GALLEY_TOOLS_DIR must be an absolute path, got \"$galley_tools_dir\"" >&2
	exit 2
	;;
esac

galley_sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum | cut -c1-64
	else
		shasum -a 256 | cut -c1-64
	fi
}

# galley_tool_names prints every tool that has a build.env.
galley_tool_names() {
	local f
	for f in "$galley_tools_src"/*/build.env; do
		[ -f "$f" ] || continue
		basename "$(dirname "$f")"
	done
}

# galley_tool_key NAME prints the cache key of tools/NAME.
galley_tool_key() {
	local dir="$galley_tools_src/$1" f
	(
		cd "$dir" || exit 1
		for f in build.env go.mod go.sum *.go; do
			if [ -f "$f" ]; then printf '%s\n' "$f"; fi
		done | LC_ALL=C sort | while IFS= read -r f; do
			printf '%s  %s\n' "$(galley_sha256 <"$f")" "$f"
		done
	) | galley_sha256 | cut -c1-12
}

# galley_tool_path NAME prints where the binary of tools/NAME belongs.
galley_tool_path() {
	local key
	key=$(galley_tool_key "$1") || return 1
	printf '%s/%s-%s/%s\n' "$galley_tools_dir" "$1" "$key" "$1"
}

galley_check_tool_name() {
	case $1 in
	'' | */* | .*)
		echo "invalid tool name \"$1\"" >&2
		return 1
		;;
	esac
	if [ ! -f "$galley_tools_src/$1/build.env" ]; then
		echo "unknown tool \"$1\": no $galley_tools_src/$1/build.env (known: $(galley_tool_names | tr '\n' ' '))" >&2
		return 1
	fi
}
