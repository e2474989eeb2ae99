#!/usr/bin/env bash
# `make bench`: what refledger costs the kernel it watches, measured on the
# kernel users run: Debian's stock 7.2 (scripts/stock.sh), booted
# unmodified (ftrace-based kprobes, BTF), with the module and fixtures
# built by Debian's toolchain, OpenZFS 2.4.4, and trixie's bpftrace as the
# peer.  Ratios within one boot (see tests/bench-guest.sh); prints a table
# and writes it, with the raw numbers, to out/bench/results.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
unset KDIR
. "$here/env.sh"
cd "$top"

out="$top/out/bench"
rm -rf "$out"
mkdir -p "$out"
"$here/deps.sh" >&2
root=$("$here/stock.sh" bpftrace)
img=$("$here/stock.sh" image)
kdir=$("$here/stock.sh" kdir)
zfs=$("$here/stock.sh" zfs | tail -n1)
# The same build directory as make check's for this kernel.
b="$RL_CACHE/build-$(echo "$top" | sha256sum | cut -c1-12)/7.2"
"$here/stock.sh" run KDIR="$kdir" RL_BUILD_DIR="$b" "$here/build.sh" module >&2
"$here/stock.sh" run KDIR="$kdir" RL_BUILD_DIR="$b" ZFS_SRC="$(dirname "$zfs")" "$here/build.sh" fixtures >&2
echo "$zfs" >"$out/zfs-dir"
echo "$root" >"$out/zfs-root"
kimg=$img/root/usr/lib/modules/$RL_STOCK_REL/vmlinuz
gcc -O2 -Wall -o "$out/churn" tests/bench/churn.c
# WORKLOADS="a b" runs only those; the guest gets them as one word.
workloads=$(echo "${WORKLOADS:-}" | tr -s ' ,' ',')
# Under TCG the guest's clock counts instructions (see vm.sh): without it
# the host's noise moved the same measurement by half from round to round.
# nokaslr: the profile's trigger is ksys_sync's address.
RL_ICOUNT=1 RL_APPEND=nokaslr "$here/vm.sh" "$kimg" "$out" "${RL_BENCH_TIMEOUT:-9000}" \
	env ROUNDS="${ROUNDS:-9}" RL_BENCH_WORKLOADS="$workloads" RL_BUILD="$b" "$top/tests/bench-guest.sh" "$out" >"$out/vm.log" 2>&1 || {
	tail -n 40 "$out/vm.log"
	exit 1
}
how=$(sed -n 's/^refledger: booting .* with //p' "$out/vm.log" | head -n1)
case $how in
"tcg -icount") clock="guest time from the instruction count (QEMU TCG -icount, 4 ns per instruction)" ;;
kvm) clock="real time (KVM)" ;;
*) clock="real time ($how)" ;;
esac
sed -i "1a # clock: $clock" "$out/results.txt"

# The instruction profile: where the instructions go, counted exactly by a
# QEMU plugin (tests/bench/tbcount.c) in a second boot.  TCG only.
profile() {
	local prof=$out/profile trigger
	case $how in
	tcg*) ;;
	*)
		echo "# profile: not run: QEMU plugins need TCG, and this run used $how"
		return
		;;
	esac
	# The plugin marks windows when the kernel enters ksys_sync.  The
	# kernel is booted with nokaslr, so ksys_sync's address is fixed;
	# Debian ships no System.map (it is in the -dbg package), so one short
	# boot reads it from kallsyms, and it is cached with the image.
	local memo=$img/ksys_sync.nokaslr
	if [ ! -s "$memo" ]; then
		mkdir -p "$out/kallsyms"
		# vm.sh hands its command to a shell as one string.
		RL_APPEND=nokaslr "$here/vm.sh" "$kimg" "$out/kallsyms" 900 \
			"echo 0 >/proc/sys/kernel/kptr_restrict; grep -E ' [Tt] ksys_sync\$' /proc/kallsyms | cut -d' ' -f1 >$out/kallsyms/addr" \
			>"$out/kallsyms/vm.log" 2>&1 || true
		if [ -s "$out/kallsyms/addr" ]; then
			cp "$out/kallsyms/addr" "$memo"
		fi
	fi
	trigger=$(cat "$memo" 2>/dev/null)
	if [ -z "$trigger" ]; then
		echo "# profile: not run: ksys_sync's address could not be read (see $out/kallsyms/vm.log)"
		return
	fi
	mkdir -p "$prof"
	cp "$out/zfs-dir" "$out/zfs-root" "$prof/"
	cc -O2 -Wall -shared -fPIC -fvisibility=hidden -o "$prof/tbcount.so" tests/bench/tbcount.c
	if ! RL_ICOUNT=1 RL_APPEND=nokaslr RL_QEMU_PLUGIN="$prof/tbcount.so,outfile=$prof/tb,trigger=$trigger" \
		"$here/vm.sh" "$kimg" "$prof" 3600 env RL_BENCH_WORKLOADS="$workloads" RL_BUILD="$b" "$top/tests/bench-profile.sh" "$prof" "$out/churn" \
		>"$prof/vm.log" 2>&1; then
		echo "# profile: the VM failed; see $prof/vm.log"
		return
	fi
	python3 "$here/profile.py" "$prof" "$b/refledger.ko" || echo "# profile: scripts/profile.py failed"
}
# The profile goes before the raw measurements, which end the file.
# PROFILE=0 skips it.
if [ "${PROFILE:-1}" = 1 ]; then
	echo "refledger: instruction profile (QEMU plugin)" >&2
	profile >"$out/profile.txt"
	awk -v prof="$out/profile.txt" '
		/^# raw measurements/ { while ((getline l < prof) > 0) print l; print "" }
		{ print }' "$out/results.txt" >"$out/results.tmp"
	mv "$out/results.tmp" "$out/results.txt"
fi
cat "$out/results.txt"
echo "refledger: results in $out/results.txt"
