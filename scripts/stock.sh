#!/usr/bin/env bash
# Debian's stock 7.2 kernel, booted unmodified, and what building for it
# takes.  Prints the path asked for; everything is cached under $RL_CACHE.
#
#   scripts/stock.sh root     a trixie build root with Debian's own toolchain
#                             for that kernel (gcc-14, rustc 1.85.1, bindgen
#                             0.71), its headers and source, OpenZFS 2.4.4's
#                             userland and dkms
#   scripts/stock.sh image    the kernel's vmlinuz and its module tree
#   scripts/stock.sh kdir     a build tree for it: Debian's headers plus the
#                             Rust metadata they lack (scripts/rustmeta.sh,
#                             run in the build root)
#   scripts/stock.sh zfs      OpenZFS 2.4.4's spl.ko and zfs.ko built against
#                             its headers in the build root (prints their
#                             directory)
#   scripts/stock.sh bpftrace the build root with trixie's bpftrace added (for
#                             `make bench`: the peer as a trixie user runs it)
#   scripts/stock.sh run CMD  runs CMD in the build root, with this repository
#                             and the cache at the same paths as outside
#
# The versions are pinned in scripts/env.sh.  Each artefact lives in a
# directory named by a key that hashes what produced it (the pinned package
# versions and this recipe's version: bump RECIPE when a change here changes
# what it builds).  As in kernel.sh, builds run under a lock and count as done
# only once .complete is written after they succeeded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"

RECIPE=1
say() { echo "refledger: $*" >&2; }

mirror=http://deb.debian.org/debian
key_of() { echo "$* recipe $RECIPE" | sha256sum | cut -c1-16; }
# The build root's packages.  From trixie, Debian's toolchain for the kernel
# and what its Kconfig probes (openssl); rustc, rust-src and rust-clippy are
# added at the Debian revision trixie has of the rustc that built the kernel
# (RL_STOCK_RUSTC, an upstream version: its version text does not name the
# revision, so any revision gives the same crate hashes).
tools=(make bc bison flex cpio kmod xz-utils python3 openssl libelf-dev
	libssl-dev dwarves gcc-14 libc6-dev bindgen libclang-dev dkms)
# From trixie-backports, at the pinned versions: the kernel's headers and
# source, OpenZFS 2.4.4's userland and DKMS source.
xy=$(cut -d. -f1-2 <<<"$RL_STOCK_REL")
backports=("linux-headers-$RL_STOCK_REL=$RL_STOCK_VER" "linux-source-$xy=$RL_STOCK_VER"
	"zfsutils-linux=$RL_STOCK_ZFS" "zfs-dkms=$RL_STOCK_ZFS")
root_key=$(key_of "trixie ${tools[*]} rustc $RL_STOCK_RUSTC ${backports[*]}")
root="$RL_CACHE/trixie-$root_key"

# Runs a command in the build root, in a private mount namespace (so the
# mounts vanish with it), with /proc, /dev, the repository and the cache
# mounted at the paths they have outside.
in_root() {
	unshare -m --propagation private /bin/bash -euc '
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		for d in "$RL_TOP" "$RL_CACHE"; do
			mkdir -p "$r$d"
			mount --bind "$d" "$r$d"
		done
		exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			XDG_CACHE_HOME="$(dirname "$RL_CACHE")" "$@"
	' in_root "$root" "$@"
}
export RL_TOP=$top RL_CACHE

make_root() {
	rl_must_build trixie "$root" || return 0
	command -v debootstrap >/dev/null || {
		say "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	}
	rm -rf "$root"
	say "creating the trixie build root $root (about 5 minutes)"
	debootstrap --variant=minbase trixie "$root" "$mirror" >"$RL_CACHE/trixie-$root_key.log" 2>&1 || {
		tail -n 20 "$RL_CACHE/trixie-$root_key.log" >&2
		say "debootstrap failed; see $RL_CACHE/trixie-$root_key.log"
		return 1
	}
	cat >"$root/etc/apt/sources.list" <<-EOF
	deb $mirror trixie main contrib
	deb $mirror trixie-backports main contrib
	deb http://deb.debian.org/debian-security trixie-security main contrib
	EOF
	# No services start in the build root, and DKMS builds nothing by
	# itself there: the suite runs `dkms build` when it wants one.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod +x "$root/usr/sbin/policy-rc.d"
	mkdir -p "$root/etc/dkms" && touch "$root/etc/dkms/no-autoinstall"
	local apt=(apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends) p rustc
	in_root apt-get -q update >>"$RL_CACHE/trixie-$root_key.log" 2>&1 || {
		say "apt-get update in the build root failed; see $RL_CACHE/trixie-$root_key.log"
		return 1
	}
	# Debian keeps several versions in backports, but not for ever: say
	# plainly when a pinned one is gone, and what to change.
	# (Not `| grep -q`: it stops reading at the first match, and under
	# pipefail the SIGPIPE apt-cache then gets fails the test.)
	for p in "${backports[@]}"; do
		in_root apt-cache madison "${p%%=*}" | grep -F " ${p#*=} " >/dev/null && continue
		say "Debian no longer serves ${p%%=*} ${p#*=}; pin a current one in scripts/env.sh (apt-cache madison ${p%%=*}, in the build root)"
		return 1
	done
	rustc=$(in_root apt-cache madison rustc | awk -F' [|] ' -v v="$RL_STOCK_RUSTC" 'index($2, v "+") == 1 { print $2; exit }')
	if [ -z "$rustc" ]; then
		say "trixie has no rustc $RL_STOCK_RUSTC, the compiler $RL_STOCK_REL was built with"
		return 1
	fi
	{
		in_root "${apt[@]}" install "${tools[@]}" "rustc=$rustc" "rust-src=$rustc" "rust-clippy=$rustc" &&
		in_root "${apt[@]}" -t trixie-backports install "${backports[@]}"
	} >>"$RL_CACHE/trixie-$root_key.log" 2>&1 || {
		tail -n 20 "$RL_CACHE/trixie-$root_key.log" >&2
		say "installing packages in the build root failed; see $RL_CACHE/trixie-$root_key.log"
		return 1
	}
	in_root apt-get clean
	touch "$root/.complete"
}

case "${1:-}" in
root)
	make_root
	echo "$root"
	;;
run)
	shift
	make_root
	in_root "$@"
	;;
image)
	make_root
	img="$RL_CACHE/stock-$(key_of "image $RL_STOCK_REL $RL_STOCK_VER")"
	if rl_must_build stock-image "$img"; then
		rm -rf "$img"
		mkdir -p "$img/dl"
		say "fetching Debian's linux-image $RL_STOCK_REL $RL_STOCK_VER"
		in_root sh -c "cd '$img/dl' && apt-get -q download \
			linux-binary-$RL_STOCK_REL=$RL_STOCK_VER \
			linux-modules-$RL_STOCK_REL=$RL_STOCK_VER \
			linux-base-$RL_STOCK_REL=$RL_STOCK_VER" >&2
		for d in "$img"/dl/*.deb; do dpkg-deb -x "$d" "$img/root"; done
		rm -rf "$img/dl"
		# The image is used as shipped; depmod only indexes its modules
		# so that modprobe finds them in the guest.
		depmod -b "$img/root/usr" "$RL_STOCK_REL"
		test -e "$img/root/usr/lib/modules/$RL_STOCK_REL/vmlinuz"
		touch "$img/.complete"
	fi
	echo "$img"
	;;
kdir)
	make_root
	in_root "$here/rustmeta.sh" "/usr/src/linux-headers-$RL_STOCK_REL"
	;;
bpftrace)
	make_root
	# Added to the build root on demand, outside its key: the builds never
	# use it, so `make check`'s cached root stays valid.  A stamp marks the
	# install done.
	if [ ! -e "$root/.bpftrace-complete" ]; then
		exec 9>"$RL_CACHE/trixie.lock"
		flock 9
		if [ ! -e "$root/.bpftrace-complete" ]; then
			say "installing trixie's bpftrace in the build root"
			{
				in_root apt-get -q update &&
				in_root apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends install bpftrace &&
				in_root apt-get clean
			} >>"$RL_CACHE/trixie-$root_key.log" 2>&1 || {
				tail -n 20 "$RL_CACHE/trixie-$root_key.log" >&2
				say "installing bpftrace in the build root failed"
				exit 1
			}
			touch "$root/.bpftrace-complete"
		fi
		exec 9>&-
	fi
	echo "$root"
	;;
zfs)
	make_root
	# Against Debian's headers as packaged (OpenZFS is C only): the
	# arch-independent part is the source, the flavour's the build tree,
	# as DKMS passes them (configure greps the source's headers).
	kdir=/usr/src/linux-headers-$RL_STOCK_REL
	ksrc=$(sed -n 's|^include \(.*\)/Makefile$|\1|p' "$root$kdir/Makefile")
	out="$RL_CACHE/zfs-$(key_of "zfs $RL_STOCK_ZFS against $RL_STOCK_REL $RL_STOCK_VER")"
	if rl_must_build stock-zfs "$out"; then
		rm -rf "$out"
		mkdir -p "$out"
		say "building OpenZFS $RL_STOCK_ZFS against $RL_STOCK_REL in $out (about 10 minutes)"
		cp -a "$root/usr/src/zfs-${RL_STOCK_ZFS%%-*}/." "$out/"
		in_root /bin/sh -ec "cd '$out'
			./configure --with-config=kernel --with-linux='$ksrc' --with-linux-obj='$kdir' >configure.log 2>&1
			make -C module -j$(( $(nproc) + 1 )) >build.log 2>&1" || {
			tail -n 30 "$out/configure.log" "$out/build.log" >&2 2>/dev/null
			say "OpenZFS build failed; see $out"
			exit 1
		}
		touch "$out/.complete"
	fi
	ko=$(find "$out" -name zfs.ko -print -quit)
	[ -n "$ko" ] || { say "no zfs.ko in $out"; exit 1; }
	dirname "$ko"
	;;
*)
	echo "usage: $0 root|image|kdir|zfs|bpftrace|run CMD..." >&2
	exit 2
	;;
esac
