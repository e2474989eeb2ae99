#!/usr/bin/env bash
# Builds (or finds in the cache) refledger's test kernel and prints its path.
#
#   scripts/kernel.sh          the debug kernel `make check` runs on
#   scripts/kernel.sh fast     the fast flavour `make demo` and `make bench`
#                              use: the same with qemu/fast.config on top
#
# The kernel is Debian's linux-source-6.12, configured from tinyconfig plus
# qemu/refledger.config (and qemu/fast.config) and built with LLVM=1.  The result lives under
# $RL_CACHE/kernel-<key>, where <key> hashes everything that produced it: the
# source package version, the fragment's settings (not its comments, so
# rewording one does not rebuild the kernel), the build recipe's version
# (bump RECIPE when a change to this script changes what it builds), rustc,
# bindgen and clang.
# Builds run under a lock, and a tree counts as built only once the file
# .complete is written after a successful build: an interrupted or concurrent
# build is never taken for a good one.  The tree is built in place, not moved
# afterwards, because kbuild records absolute paths in it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"

frags=("$top/qemu/refledger.config")
case ${1:-} in
"") ;;
fast) frags+=("$top/qemu/fast.config") ;;
*)
	echo "usage: $0 [fast]" >&2
	exit 2
	;;
esac
tarball=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1)
if [ -z "$tarball" ]; then
	echo "refledger: linux-source-6.12 is not installed; run scripts/deps.sh" >&2
	exit 1
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
RECIPE=1
# The fragments' settings: options set, and options asked to be off with
# Kconfig's own "# CONFIG_X is not set"; for an option set in several, the
# last fragment's.
settings() {
	grep -hE '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set$)' "${frags[@]}" |
		awk '{ n = ($1 == "#") ? $2 : substr($0, 1, index($0, "=") - 1); if (!(n in v)) o[++k] = n; v[n] = $0 }
		     END { for (i = 1; i <= k; i++) print v[o[i]] }'
}
key=$( {
	echo "$srcver recipe $RECIPE"
	settings
	rustc --version
	bindgen --version
	clang --version | head -n1
} | sha256sum | cut -c1-16)
out="$RL_CACHE/kernel-$key"

if ! rl_must_build kernel "$out"; then
	echo "$out"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
echo "refledger: building kernel $srcver (key $key) in $out; about 12-15 minutes on 2 cores" >&2
tar -xf "$tarball" -C "$out" --strip-components=1

mk() { make -C "$out" LLVM=1 ARCH=x86_64 "$@"; }
mk -s tinyconfig >/dev/null
"$out/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null
mk -s olddefconfig >/dev/null

# A line that is neither a setting nor a comment would be left out of the
# key and the check below, and Kconfig only warns about it.
if grep -nvE '^(CONFIG_[A-Za-z0-9_]+=|#|$)' "${frags[@]}" >&2; then
	echo "refledger: ${frags[*]}: the lines above are not settings" >&2
	exit 1
fi

# Kconfig silently drops options whose dependencies are missing, and turns
# on options that others select: check that every setting survived.
missing=0
while IFS= read -r line; do
	case "$line" in
	'# '*)
		name=${line#\# }
		name=${name%% *}
		grep -q "^$name=" "$out/.config" || continue
		;;
	*)
		grep -qxF -- "$line" "$out/.config" && continue
		name=${line%%=*}
		;;
	esac
	have=$(grep -E "^($name=|# $name is not set)" "$out/.config" || echo "absent")
	echo "refledger: config fragment asks for '$line' but the kernel has '$have'" >&2
	missing=1
done < <(settings)
if [ "$missing" != 0 ]; then
	echo "refledger: fix qemu/refledger.config (a dependency is missing, or an option asked off is selected by another)" >&2
	exit 1
fi

jobs=$(( $(nproc) + 1 ))
if ! mk -j"$jobs" bzImage modules >"$out/build.log" 2>&1 \
   || [ ! -e "$out/arch/x86/boot/bzImage" ] || [ ! -e "$out/Module.symvers" ]; then
	tail -n 40 "$out/build.log" >&2
	echo "refledger: kernel build failed; see $out/build.log" >&2
	exit 1
fi
touch "$out/.complete"
echo "refledger: kernel ready in $out" >&2
echo "$out"
