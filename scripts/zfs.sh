#!/usr/bin/env bash
# Builds (or finds in the cache) OpenZFS's spl.ko and zfs.ko for refledger's
# test kernel and prints the directory that holds them.
#
#   scripts/zfs.sh            # against the cached test kernel (scripts/kernel.sh)
#   KDIR=/path/to/build scripts/zfs.sh
#
# The source is Debian's zfs-dkms 2.3.2 (bookworm-backports, contrib), which
# still has OpenZFS #18309; zfsutils-linux of the same version provides
# zpool/zfs, which the guest runs from the host's root.  Both are installed
# here if needed, with DKMS autoinstall disabled for the duration: we build
# the modules ourselves, against KDIR, and a DKMS build for some other kernel
# must neither slow down nor fail the install.
#
# The modules are built in a copy of /usr/src/zfs-$ZFS_VER under
# $RL_CACHE/zfs-<key>, where <key> hashes the zfs-dkms package version, the
# kernel tree (its path, which for the cached kernel encodes its key, and its
# .config) and the recipe version (bump RECIPE when a change to this script
# changes what it builds).  As in kernel.sh, builds run under a lock and a
# tree counts as built only once .complete is written after a successful
# build.  The tree is built in place (kbuild records absolute paths).
# A kernel built with clang (CONFIG_CC_IS_CLANG) is built against with
# LLVM=1, passed to OpenZFS's configure as KERNEL_LLVM so that its kernel
# tests and its module build both use it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

ZFS_VER=2.3.2
RECIPE=1
src=/usr/src/zfs-$ZFS_VER

say() { echo "refledger: $*" >&2; }

# The installed version of a package, empty if it is not installed.
installed() {
	dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null \
		| awk '$1 == "installed" { print $2 }'
}

# The newest $ZFS_VER-* version of a package apt knows, empty if none.
candidate() {
	apt-cache madison "$1" 2>/dev/null | awk -F' [|] ' -v v="$ZFS_VER" \
		'index($2, v "-") == 1 { print $2; exit }'
}

install_zfs() {
	local want=() p v reinstall=
	for p in zfs-dkms zfsutils-linux; do
		case "$(installed "$p")" in "$ZFS_VER"-*) continue ;; esac
		v=$(candidate "$p")
		if [ -z "$v" ]; then
			apt-get update -qq >&2 || true
			v=$(candidate "$p")
		fi
		if [ -z "$v" ]; then
			say "no $p $ZFS_VER-* in apt's sources; needs bookworm-backports contrib (scripts/deps.sh)"
			exit 1
		fi
		want+=("$p=$v")
	done
	[ "${#want[@]}" = 0 ] && [ -e "$src/configure" ] && return 0
	if [ "${#want[@]}" = 0 ]; then
		# Installed, but the source is gone: reinstall zfs-dkms.
		want=("zfs-dkms=$(installed zfs-dkms)")
		reinstall=--reinstall
	fi
	say "installing ${want[*]}"
	# DKMS's postinst skips every build while this file exists.
	local noauto=/etc/dkms/no-autoinstall created=
	if [ ! -e "$noauto" ]; then
		mkdir -p /etc/dkms
		touch "$noauto"
		created=1
		trap 'rm -f /etc/dkms/no-autoinstall' EXIT
	fi
	local rc=0
	# --no-install-recommends: dkms recommends linux-headers-*, whose
	# installation would trigger DKMS builds for Debian's kernel.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends ${reinstall:-} "${want[@]}" >&2 || rc=$?
	if [ -n "$created" ]; then
		rm -f "$noauto"
		trap - EXIT
	fi
	if [ "$rc" != 0 ]; then
		say "apt-get install ${want[*]} failed ($rc)"
		exit 1
	fi
	if [ ! -e "$src/configure" ]; then
		say "zfs-dkms is installed but $src/configure is missing"
		exit 1
	fi
}

install_zfs

kdir=${KDIR:-$("$here/kernel.sh")}
kdir=$(cd "$kdir" && pwd -P)
if [ ! -e "$kdir/.config" ] || [ ! -e "$kdir/Module.symvers" ]; then
	say "$kdir is not a built kernel tree (.config and Module.symvers needed)"
	exit 1
fi
llvm=
grep -qx 'CONFIG_CC_IS_CLANG=y' "$kdir/.config" && llvm=1

debver=$(installed zfs-dkms)
key=$( {
	echo "zfs-dkms $debver recipe $RECIPE kernel $kdir llvm ${llvm:-0}"
	cat "$kdir/.config"
} | sha256sum | cut -c1-16)
out="$RL_CACHE/zfs-$key"

# The directory holding both modules, or nothing.
moddir() {
	local spl
	spl=$(find "$out" -name spl.ko -print -quit 2>/dev/null)
	[ -n "$spl" ] && [ -e "$(dirname "$spl")/zfs.ko" ] && dirname "$spl"
	return 0
}

if ! rl_must_build zfs "$out"; then
	moddir
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
say "building zfs $debver against $(basename "$kdir") (key $key, LLVM=${llvm:-}) in $out; about 10 minutes on 2 cores"
cp -a "$src/." "$out/"
cd "$out"

# A lockdep kernel (DEBUG_LOCK_ALLOC) turns mutex_lock() into the GPL-only
# mutex_lock_nested(), and OpenZFS's configure refuses such a kernel because
# a CDDL module cannot link against it.  This build is a private test
# artefact that never leaves the cache, so for that kernel only it is
# labelled GPL, which lets it link; its code is unchanged.
if grep -qx 'CONFIG_DEBUG_LOCK_ALLOC=y' "$kdir/.config"; then
	say "the kernel has DEBUG_LOCK_ALLOC: labelling this test build of zfs GPL so that it links"
	sed -i 's/^License:.*/License:       GPL/' META
fi

t0=$(date +%s)
if ! ./configure --with-config=kernel --with-linux="$kdir" --with-linux-obj="$kdir" \
	${llvm:+KERNEL_LLVM=$llvm} >"$out/configure.log" 2>&1; then
	tail -n 40 "$out/configure.log" >&2
	say "zfs configure failed; see $out/configure.log and $out/config.log"
	exit 1
fi
t1=$(date +%s)
say "configure took $((t1 - t0)) s"

jobs=$(( $(nproc) + 1 ))
if ! make -C module -j"$jobs" >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	say "zfs module build failed; see $out/build.log"
	exit 1
fi
t2=$(date +%s)
say "module build took $((t2 - t1)) s"

dir=$(moddir)
if [ -z "$dir" ]; then
	say "zfs build finished but spl.ko and zfs.ko are not both in $out"
	exit 1
fi
touch "$out/.complete"
say "zfs modules ready in $dir"
echo "$dir"
