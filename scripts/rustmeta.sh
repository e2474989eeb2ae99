#!/usr/bin/env bash
# Makes a distribution's kernel headers able to build Rust modules, once, and
# prints the resulting build tree.
#
#   scripts/rustmeta.sh /usr/src/linux-headers-$(uname -r)
#
# An out-of-tree Rust module needs the kernel's Rust crates (`kernel`,
# `macros`, pin-init, ...) as compiled metadata in $KDIR/rust/, and
# scripts/target.json.  Debian's linux-headers packages ship neither.  They
# can be made again from the matching linux-source package with the
# kernel's own .config and the same compilers: Rust symbol names carry crate
# hashes that depend on the rustc that compiled them, so only the rustc that
# built the kernel gives a module that links.  This script checks that, runs
# the kernel's own `make prepare` (which builds the crates) in a copy of the
# source, checks that the crates' exported symbols are the kernel's (its
# Module.symvers), and assembles a build tree: the headers as they are, plus
# rust/, scripts/target.json, fs/mount.h (struct mount, which refledger's
# C helpers read) and net/unix/af_unix.h (UNIXCB(), which the holder walk
# reads files in flight with; private there in 7.x).  The source copy
# is removed afterwards.
#
# The tree lives under $RL_CACHE/kdir-<release>-<key>, where <key> hashes
# the headers' .config and Module.symvers, the compilers' versions and this
# recipe's version.  A KDIR that has the metadata already is printed as is.
#
# Supported: Debian's split headers (linux-headers-<release> including
# linux-headers-<version>-common, with the source in linux-source-<x.y>).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

RECIPE=2
die() {
	echo "refledger: $*" >&2
	exit 1
}

[ $# = 1 ] || die "usage: $0 KDIR"
kdir=$(cd "$1" && pwd -P) || die "$1: no such directory"
if [ -e "$kdir/rust/libkernel.rmeta" ]; then
	echo "$kdir"
	exit 0
fi
cfg=$kdir/.config
[ -e "$cfg" ] && [ -e "$kdir/Module.symvers" ] || die "$kdir has no .config or Module.symvers: not a kernel build tree or headers"
grep -qx 'CONFIG_RUST=y' "$cfg" || die "$kdir: this kernel was built without CONFIG_RUST, so it cannot load Rust modules"
rel=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h")
[ -n "$rel" ] || die "$kdir: no UTS_RELEASE in include/generated/utsrelease.h"

# The compilers must be the kernel's own.
want_rustc=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$cfg")
have_rustc=$(rustc --version 2>/dev/null || echo none)
if [ "$have_rustc" != "$want_rustc" ]; then
	die "the kernel was built by '$want_rustc' but rustc here is '$have_rustc'.
  Rust symbol names depend on the compiler, so a module built by another rustc
  does not link.  Install that rustc with its rust-src (on Debian 13 for its
  7.x kernels: apt-get install rustc rust-src bindgen libclang-dev, from trixie,
  not trixie-backports) and make sure it comes first in PATH."
fi
rust_src=$(rustc --print sysroot)/lib/rustlib/src/rust/library
[ -d "$rust_src/core" ] || die "rust-src is missing (no $rust_src/core): apt-get install rust-src (the version of rustc)"
command -v bindgen >/dev/null || die "bindgen is missing: apt-get install bindgen libclang-dev"
# Debian's headers name the C compiler in .kernelvariables.
cc=$(sed -n 's/^CC = .*\$(CROSS_COMPILE)\([^ ]*\)$/\1/p' "$kdir/.kernelvariables" 2>/dev/null)
cross=$(sed -n 's/^override CROSS_COMPILE = \(.*\)$/\1/p' "$kdir/.kernelvariables" 2>/dev/null)
cc=${cross}${cc:-gcc}
command -v "$cc" >/dev/null || die "$cc, the kernel's C compiler, is missing (Debian: apt-get install ${cc#"$cross"})"
for t in make bc bison flex; do
	command -v $t >/dev/null || die "$t is missing: apt-get install make bc bison flex libelf-dev libssl-dev"
done

# The matching source: Debian's linux-source-<x.y>, of the headers' version.
xy=$(cut -d. -f1-2 <<<"$rel")
tarball=$(ls /usr/src/linux-source-"$xy".tar.* 2>/dev/null | head -n1)
hdrver=$(dpkg-query -W -f='${Version}' "linux-headers-$rel" 2>/dev/null || true)
srcver=$(dpkg-query -W -f='${Version}' "linux-source-$xy" 2>/dev/null || true)
if [ -z "$tarball" ] || { [ -n "$hdrver" ] && [ "$hdrver" != "$srcver" ]; }; then
	die "building the Rust metadata for $rel needs its source: apt-get install linux-source-$xy${hdrver:+=$hdrver}"
fi

key=$( {
	echo "recipe $RECIPE $rel headers ${hdrver:-?} source ${srcver:-?} $tarball"
	sha256sum "$cfg" "$kdir/Module.symvers"
	echo "$have_rustc"
	bindgen --version
	"$cc" --version | head -n1
} | sha256sum | cut -c1-16)
out="$RL_CACHE/kdir-$rel-$key"
if ! rl_must_build "kdir-$rel" "$out"; then
	echo "$out/tree"
	exit 0
fi
rm -rf "$out"
mkdir -p "$out/src"
echo "refledger: building the Rust metadata for $rel in $out (once; a few minutes)" >&2
tar -xf "$tarball" -C "$out/src" --strip-components=1
cp "$cfg" "$out/src/.config"
# Debian's top Makefile includes .kernelvariables: ARCH, KERNELRELEASE and
# the compilers the kernel was built with.
[ -e "$kdir/.kernelvariables" ] && cp "$kdir/.kernelvariables" "$out/src/"
kmake() { make -C "$out/src" "$@"; }
kmake -s olddefconfig >"$out/build.log" 2>&1 || die "make olddefconfig failed; see $out/build.log"
# Every option must come out as the kernel has it, but for the toolchain's
# version numbers: a point release of gcc, binutils or pahole changes those
# and nothing that the Rust crates' symbols depend on (rustc is checked
# above, and the symbols themselves below).
options() { grep '^CONFIG_' "$1" | grep -vE '^CONFIG_(CC_VERSION_TEXT|GCC_VERSION|AS_VERSION|LD_VERSION|PAHOLE_VERSION|BINDGEN_VERSION_TEXT)='; }
if ! diff <(options "$cfg") <(options "$out/src/.config") >>"$out/build.log"; then
	die "the source's Kconfig does not reproduce $cfg (see $out/build.log): linux-source-$xy is not this kernel's source, or a tool it probes is missing"
fi
if ! kmake -j"$(( $(nproc) + 1 ))" prepare >>"$out/build.log" 2>&1 \
   || [ ! -e "$out/src/rust/libkernel.rmeta" ]; then
	tail -n 30 "$out/build.log" >&2
	die "make prepare failed; see $out/build.log"
fi

# The crates' exported symbols must be the kernel's: with another compiler
# or other flags their hashes would differ and no Rust module would link.
missing=$(comm -23 \
	<(awk '$2 ~ /^_R/ && $3 == "vmlinux" { print $2 }' "$kdir/Module.symvers" | sort -u) \
	<(for o in "$out"/src/rust/*.o; do nm --defined-only "$o"; done | awk '{ print $3 }' | sort -u) | wc -l)
total=$(awk '$2 ~ /^_R/ && $3 == "vmlinux"' "$kdir/Module.symvers" | wc -l)
if [ "$total" = 0 ] || [ "$missing" != 0 ]; then
	die "$missing of the kernel's $total exported Rust symbols are not in the rebuilt crates: the compiler or the configuration differs"
fi
echo "refledger: the rebuilt crates define all $total of the kernel's exported Rust symbols" >&2

# The tree: the headers with absolute links, Debian's Makefile pointed here,
# the scripts directory made real so that target.json can sit in it.
t="$out/tree"
mkdir -p "$t/rust" "$t/scripts"
for e in "$kdir"/* "$kdir"/.[!.]*; do
	[ -e "$e" ] || continue
	n=$(basename "$e")
	case "$n" in
	scripts)
		for s in "$(readlink -f "$e")"/*; do ln -s "$s" "$t/scripts/"; done
		;;
	*)
		if [ -L "$e" ]; then ln -s "$(readlink -f "$e")" "$t/$n"; else cp -a "$e" "$t/"; fi
		;;
	esac
done
sed -i "s|^KBUILD_OUTPUT=.*|KBUILD_OUTPUT=$t|" "$t/Makefile"
cp "$out"/src/rust/*.rmeta "$out"/src/rust/*.so "$t/rust/"
cp "$out/src/scripts/target.json" "$t/scripts/"
# struct mount, private to fs/, which refledger's C helpers read (Kbuild).
mkdir -p "$t/fs"
cp "$out/src/fs/mount.h" "$t/fs/"
# struct unix_skb_parms and UNIXCB(), private to net/unix/ in the kernels
# that moved them out of include/net/af_unix.h, which the holder walk reads
# to find files in flight in unix sockets (Kbuild).
if [ -e "$out/src/net/unix/af_unix.h" ]; then
	mkdir -p "$t/net/unix"
	cp "$out/src/net/unix/af_unix.h" "$t/net/unix/"
fi
mv "$out/build.log" "$out/prepare.log"
rm -rf "$out/src"
touch "$out/.complete"
echo "refledger: Rust metadata for $rel ready in $t" >&2
echo "$t"
