#!/usr/bin/env bash
# Builds refledger.ko (and the test fixtures) against KDIR.
#
#   scripts/build.sh module     refledger.ko; fails on any compiler warning
#   scripts/build.sh fixtures   the test fixture modules in tests/fixtures/
#   scripts/build.sh clippy     refledger.ko with CLIPPY=1; fails on any warning
#   scripts/build.sh fmtcheck   rustfmt --check with the kernel's .rustfmt.toml
#   scripts/build.sh fmt        rustfmt in place
#   scripts/build.sh clean
#
# Without KDIR, installs the dependencies and builds (or reuses) the cached
# test kernel first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"
cd "$top"

if [ -z "${KDIR:-}" ]; then
	"$here/deps.sh"
	KDIR=$("$here/kernel.sh")
fi
LLVM=${LLVM-1}
kmake() { make -C "$KDIR" ${LLVM:+LLVM=$LLVM} "$@"; }

# Runs a build and fails if it printed a warning: the module must build clean.
clean_build() {
	local log
	log=$(mktemp)
	if ! kmake "$@" 2>&1 | tee "$log"; then
		rm -f "$log"
		return 1
	fi
	if grep -E '^(warning|error)(\[|:)|: warning:' "$log" >/dev/null; then
		echo "refledger: the build printed warnings (above); they count as failures" >&2
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

# kbuild does not rebuild everything of an external module when KDIR
# changes (a stale object once made a fixture fail to load with "Invalid
# relocation target"), so a build directory last built against another
# kernel is cleaned first.
same_kernel() {
	local dir=$1 stamp="$1/.refledger-kdir"
	if [ "$(cat "$stamp" 2>/dev/null)" != "$KDIR" ]; then
		kmake M="$dir" clean >/dev/null 2>&1 || true
		echo "$KDIR" >"$stamp"
	fi
}

rust_sources() { find src tests -name '*.rs' ! -name 'bindings_generated.rs' | sort; }

case "${1:-module}" in
module)
	same_kernel "$top"
	clean_build M="$top" modules
	;;
fixtures)
	for d in tests/fixtures/*/; do
		[ -e "$d/Kbuild" ] || continue
		same_kernel "$top/${d%/}"
		clean_build M="$top/${d%/}" modules
	done
	;;
clippy)
	# Clippy only runs on crates that are rebuilt.
	same_kernel "$top"
	rm -f src/rust_refledger.o
	clean_build M="$top" CLIPPY=1 modules
	;;
fmtcheck)
	rustfmt --check --edition 2021 --config-path "$KDIR/.rustfmt.toml" $(rust_sources)
	;;
fmt)
	rustfmt --edition 2021 --config-path "$KDIR/.rustfmt.toml" $(rust_sources)
	;;
clean)
	if [ -d "$KDIR" ]; then
		kmake M="$top" clean >/dev/null
		for d in tests/fixtures/*/; do
			[ -e "$d/Kbuild" ] && kmake M="$top/$d" clean >/dev/null
		done
	fi
	rm -rf out src/bindings_generated.rs
	;;
*)
	echo "usage: $0 module|fixtures|clippy|fmtcheck|fmt|clean" >&2
	exit 2
	;;
esac
