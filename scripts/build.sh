#!/usr/bin/env bash
# Builds refledger.ko (and the test fixtures) against KDIR.
#
#   scripts/build.sh module     refledger.ko; fails on any compiler warning
#   scripts/build.sh fixtures   the test fixture modules in tests/fixtures/
#                               (zfstorn only with ZFS_SRC, the configured
#                               OpenZFS tree zfs.ko was built in)
#   scripts/build.sh clippy     refledger.ko with CLIPPY=1; fails on any warning
#   scripts/build.sh fmtcheck   rustfmt --check with the kernel's .rustfmt.toml
#   scripts/build.sh fmt        rustfmt in place
#   scripts/build.sh clean
#
# Without KDIR, installs the dependencies and builds (or reuses) the cached
# test kernel first.  A KDIR of distribution headers that lack the Rust
# metadata (Debian's) gets it made once by scripts/rustmeta.sh.  LLVM=1 is
# passed for a clang-built kernel and not for a GCC-built one, unless LLVM is
# set.  RL_BUILD_DIR builds in a copy of the sources there instead of in this
# tree (make check builds for each kernel in its own directory, outside this
# tree: kbuild's M= clean deletes every module and object below M).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"
cd "$top"

if [ -z "${KDIR:-}" ]; then
	"$here/deps.sh"
	KDIR=$("$here/kernel.sh")
fi
case "${1:-module}" in
module | fixtures | clippy)
	if [ ! -e "$KDIR/rust/libkernel.rmeta" ] && grep -qx 'CONFIG_RUST=y' "$KDIR/.config" 2>/dev/null; then
		KDIR=$("$here/rustmeta.sh" "$KDIR")
	fi
	;;
esac
if [ -z "${LLVM+set}" ]; then
	LLVM=
	grep -qx 'CONFIG_CC_IS_CLANG=y' "${KDIR:-}/.config" 2>/dev/null && LLVM=1
fi
kmake() { make -C "$KDIR" ${LLVM:+LLVM=$LLVM} "$@"; }

# The module must be built by the rustc that built the kernel: Rust symbol
# names carry crate hashes that depend on it.
check_rustc() {
	local want have
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$KDIR/.config")
	have=$(rustc --version 2>/dev/null || echo "no rustc")
	[ -z "$want" ] || [ "$have" = "$want" ] && return 0
	echo "refledger: $KDIR was built by '$want', but rustc here is '$have';" >&2
	echo "refledger: put that rustc first in PATH (or set RUSTUP_TOOLCHAIN)" >&2
	return 1
}

src=$top
if [ -n "${RL_BUILD_DIR:-}" ] && [ "$RL_BUILD_DIR" != "$top" ]; then
	case "${1:-module}" in
	module | fixtures | clippy)
		# The sources only, never what a build here left beside them (a
		# module built for another kernel would look up to date there);
		# a file is copied only when it differs, so kbuild rebuilds only
		# what changed since the last build in RL_BUILD_DIR.
		find Kbuild src tests/fixtures tests/helpers -type f \( -name Kbuild -o -name '*.rs' \
			-o -name '*.c' -o -name '*.h' \) ! -name '*.mod.c' \
			! -name bindings_generated.rs | while read -r f; do
			cmp -s "$f" "$RL_BUILD_DIR/$f" && continue
			mkdir -p "$RL_BUILD_DIR/$(dirname "$f")"
			cp "$f" "$RL_BUILD_DIR/$f"
		done
		;;
	esac
	src=$RL_BUILD_DIR
fi

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
	check_rustc
	same_kernel "$src"
	clean_build M="$src" modules
	;;
fixtures)
	for d in tests/fixtures/*/; do
		[ -e "$d/Kbuild" ] || continue
		same_kernel "$src/${d%/}"
		clean_build M="$src/${d%/}" ${ZFS_SRC:+ZFS_SRC="$ZFS_SRC"} modules
	done
	# The guest tests' C helpers: static, as the guest runs them on the
	# host's root whichever root built them.
	for c in tests/helpers/*.c; do
		cc -O2 -Wall -Wextra -Werror -static -o "$src/${c%.c}" "$src/$c"
	done
	;;
clippy)
	# Clippy only runs on crates that are rebuilt.
	check_rustc
	same_kernel "$src"
	rm -f "$src/src/rust_refledger.o"
	clean_build M="$src" CLIPPY=1 modules
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
