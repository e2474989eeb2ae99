#!/usr/bin/env bash
# Builds (or finds in the cache) refledger's test kernel and prints its path.
#
# The kernel is Debian's linux-source-6.12, configured from tinyconfig plus
# qemu/refledger.config and built with LLVM=1.  The result lives under
# $RL_CACHE/kernel-<key>, where <key> hashes everything that produced it: the
# source package version, the fragment, the build recipe's version (bump
# RECIPE when a change to this script changes what it builds), rustc, bindgen
# and clang.
# Builds run under a lock, and a tree counts as built only once the file
# .complete is written after a successful build: an interrupted or concurrent
# build is never taken for a good one.  The tree is built in place, not moved
# afterwards, because kbuild records absolute paths in it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"

frag="$top/qemu/refledger.config"
tarball=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1)
if [ -z "$tarball" ]; then
	echo "refledger: linux-source-6.12 is not installed; run scripts/deps.sh" >&2
	exit 1
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
RECIPE=1
key=$( {
	echo "$srcver recipe $RECIPE"
	cat "$frag"
	rustc --version
	bindgen --version
	clang --version | head -n1
} | sha256sum | cut -c1-16)
out="$RL_CACHE/kernel-$key"

if [ -e "$out/.complete" ]; then
	echo "$out"
	exit 0
fi

exec 9>"$RL_CACHE/kernel.lock"
echo "refledger: waiting for the kernel build lock" >&2
flock 9
if [ -e "$out/.complete" ]; then
	echo "$out"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
echo "refledger: building kernel $srcver (key $key) in $out; about 12-15 minutes on 2 cores" >&2
tar -xf "$tarball" -C "$out" --strip-components=1

mk() { make -C "$out" LLVM=1 ARCH=x86_64 "$@"; }
mk -s tinyconfig >/dev/null
"$out/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag" >/dev/null
mk -s olddefconfig >/dev/null

# Kconfig silently drops options whose dependencies are missing: check that
# every requested option survived.
missing=0
while IFS= read -r line; do
	case "$line" in ''|'#'*) continue ;; esac
	if ! grep -qxF -- "$line" "$out/.config"; then
		name=${line%%=*}
		have=$(grep -E "^($name=|# $name is not set)" "$out/.config" || echo "absent")
		echo "refledger: config fragment asks for '$line' but the kernel has '$have'" >&2
		missing=1
	fi
done < "$frag"
if [ "$missing" != 0 ]; then
	echo "refledger: fix qemu/refledger.config (a dependency is missing)" >&2
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
