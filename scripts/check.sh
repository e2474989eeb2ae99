#!/usr/bin/env bash
# `make check`: installs what is missing, then runs the whole guest suite on
# each kernel, with its own build of refledger.ko, the fixtures and OpenZFS:
#
#   6.12   the test kernel built here (scripts/kernel.sh): Debian's
#          linux-source-6.12, our config fragment, clang; OpenZFS 2.3.2
#   7.2    Debian's stock kernel, unmodified (scripts/stock.sh): its own
#          vmlinuz and modules, the module built by Debian's gcc-14 and
#          rustc 1.85.1 in a trixie build root; OpenZFS 2.4.4
#
# Host-side checks (builds without warnings, clippy, rustfmt, OpenZFS and
# DKMS builds) count as results too.  Ends with each kernel's summary and
# "N passed, N failed" over everything, and exits non-zero on any failure,
# including a warning, bug, lockdep or KASAN report in a guest's kernel log.
#
# RL_KERNELS="6.12 7.2" chooses the kernels; RL_TESTS="tests/t02-probes.sh
# ..." chooses the guest tests.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# The kernels are chosen below, not by the caller's KDIR.
unset KDIR
. "$here/env.sh"
cd "$top"

start=$(date +%s)
"$here/deps.sh" || exit 1

out="$top/out/check"
rm -rf "$out"
mkdir -p "$out"
host="$out/host.txt"
: >"$host"
n=0
# step DESCRIPTION COMMAND...: a host-side check, counted like a test.
step() {
	local desc=$1
	shift
	n=$((n + 1))
	echo "refledger: $desc"
	if "$@"; then
		echo "ok $n $desc" >>"$host"
	else
		echo "not ok $n $desc" >>"$host"
		return 1
	fi
}
elapsed() { echo "$(( $(date +%s) - start ))s"; }

kernels=${RL_KERNELS:-6.12 7.2}
# The stock kernel's build root and image are mostly downloads: fetched
# while the 6.12 kernel compiles (the steps below wait for them).
case " $kernels " in
*" 7.2 "*)
	{ "$here/stock.sh" root && "$here/stock.sh" image; } >"$out/stock-fetch.log" 2>&1 &
	fetch=$!
	trap 'kill $fetch 2>/dev/null; wait $fetch 2>/dev/null' EXIT
	;;
esac

# Each kernel's builds of refledger.ko and the fixtures, outside this tree:
# kbuild's `make M=... clean`, which build.sh runs when KDIR changes, deletes
# every object and module below M, and `make` builds in this tree.
builds="$RL_CACHE/build-$(echo "$top" | sha256sum | cut -c1-12)"

# Per kernel: the image to boot and the environment of its guest run.
declare -A kimg genv
runs=()

# Our own build of 6.12.
built_kernel() {
	local kdir b=$builds/6.12 o=$out/6.12
	mkdir -p "$o"
	step "6.12: the test kernel is built (scripts/kernel.sh)" \
		eval 'kdir=$("$here/kernel.sh")' || return 1
	echo "refledger: 6.12 ready after $(elapsed): $kdir"
	local ok=1 zfs=
	step "6.12: refledger.ko builds without warnings" \
		env KDIR="$kdir" RL_BUILD_DIR="$b" "$here/build.sh" module || ok=0
	# OpenZFS for tests/t09 and t10, built against the test kernel and
	# cached; the zfstorn fixture is built against its tree.
	step "6.12: OpenZFS 2.3.2 modules build (scripts/zfs.sh)" \
		eval 'KDIR="$kdir" "$here/zfs.sh" >"$o/zfs.tmp" && tail -n1 "$o/zfs.tmp" >"$o/zfs-dir"' &&
		zfs=$(dirname "$(cat "$o/zfs-dir")")
	step "6.12: test fixtures build without warnings" \
		env KDIR="$kdir" RL_BUILD_DIR="$b" ZFS_SRC="$zfs" "$here/build.sh" fixtures || ok=0
	step "6.12: clippy is clean (make clippy)" \
		env KDIR="$kdir" RL_BUILD_DIR="$b" "$here/build.sh" clippy
	step "rustfmt is clean (make fmtcheck)" env KDIR="$kdir" "$here/build.sh" fmtcheck
	[ "$ok" = 1 ] || return 1
	kimg[6.12]=$kdir
	genv[6.12]="RL_BUILD=$b"
	runs+=(6.12)
}

# Debian's stock 7.2, booted as shipped.
stock_kernel() {
	local root img kdir b=$builds/7.2 o=$out/7.2
	mkdir -p "$o"
	step "7.2: the trixie build root with Debian's toolchain (scripts/stock.sh root)" \
		eval 'root=$("$here/stock.sh" root)' || return 1
	step "7.2: Debian's linux-image $RL_STOCK_REL (scripts/stock.sh image)" \
		eval 'img=$("$here/stock.sh" image)' || return 1
	step "7.2: Rust metadata rebuilt from linux-source-7.2 matches the kernel's exports (scripts/rustmeta.sh)" \
		eval 'kdir=$("$here/stock.sh" kdir)' || return 1
	echo "refledger: 7.2 ready after $(elapsed): $kdir"
	local ok=1 zfs= in_root=("$here/stock.sh" run KDIR="$kdir" RL_BUILD_DIR="$b")
	step "7.2: refledger.ko builds without warnings (Debian's gcc-14, rustc 1.85.1)" \
		"${in_root[@]}" "$here/build.sh" module || ok=0
	step "7.2: OpenZFS 2.4.4 modules build (scripts/stock.sh zfs)" \
		eval '"$here/stock.sh" zfs >"$o/zfs.tmp" && tail -n1 "$o/zfs.tmp" >"$o/zfs-dir"' &&
		zfs=$(dirname "$(cat "$o/zfs-dir")")
	step "7.2: test fixtures build without warnings" \
		"${in_root[@]}" ZFS_SRC="$zfs" "$here/build.sh" fixtures || ok=0
	step "7.2: clippy is clean (Debian's clippy 1.85.1)" \
		"${in_root[@]}" "$here/build.sh" clippy
	step "7.2: dkms build of refledger for $RL_STOCK_REL (dkms.conf)" \
		"$here/stock.sh" run "$here/dkms-build.sh" "$RL_STOCK_REL"
	# The guest runs OpenZFS 2.4.4's own zpool and zfs from the build root.
	echo "$root" >"$o/zfs-root"
	[ "$ok" = 1 ] || return 1
	kimg[7.2]=$img/root/usr/lib/modules/$RL_STOCK_REL/vmlinuz
	genv[7.2]="RL_BUILD=$b"
	runs+=(7.2)
}

case " $kernels " in
*" 6.12 "*) ;;
*) echo "ok $((n += 1)) rustfmt is clean # SKIP checked with the 6.12 tree's .rustfmt.toml, not built in this run" >>"$host" ;;
esac
for k in $kernels; do
	case $k in
	6.12) built_kernel ;;
	7.2) stock_kernel ;;
	*) step "kernel '$k' is known (RL_KERNELS takes 6.12 and 7.2)" false ;;
	esac
done

results=()
for k in "${runs[@]}"; do
	o=$out/$k
	echo "refledger: running the guest suite on $k after $(elapsed)"
	# shellcheck disable=SC2086
	"$here/vm.sh" "${kimg[$k]}" "$o" 3600 env ${genv[$k]} "$top/tests/guest-run.sh" "$o" ${RL_TESTS:-} \
		>"$o/vm.log" 2>&1
	rc=$?
	grep -vE '^\[ *[0-9]+\.[0-9]+\]' "$o/vm.log" | grep -E '^ *(KTAP|ok|not ok|#|1\.\.)' | sed "s/^/$k: /" || true
	if [ "$rc" != 0 ]; then
		echo "refledger: the $k VM exited with status $rc; console in $o/console.log" >&2
		tail -n 30 "$o/vm.log" >&2
		echo "not ok $((n += 1)) $k: the test VM ran to the end (status $rc)" >>"$host"
	fi
	results+=("$k:$o/ktap.txt:$o/dmesg.txt")
done
echo "refledger: took $(elapsed)"
python3 "$here/ktap.py" "$host" "${results[@]}"
