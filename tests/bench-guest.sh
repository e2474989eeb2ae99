#!/bin/bash
# The guest side of `make bench`.  Every figure is a ratio measured side by
# side in one boot: each workload runs with nothing loaded ("none"), with
# nullprobe (the same probes with empty handlers: "floor") and with
# refledger, interleaved over several rounds; medians are compared.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1
churn=$out/churn
D=/sys/kernel/debug/refledger
raw=$out/raw.txt
res=$out/results.txt
: >"$raw"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
work=$(mktemp -d)
ROUNDS=${ROUNDS:-5}

truncate -s 64M "$work/ext4.img"
loop=$(losetup -f --show "$work/ext4.img")
mkfs.ext4 -q "$loop"
insmod "$top/tests/fixtures/swapblk/swapblk.ko"
udevadm settle 2>/dev/null
mkdir -p "$work/t" "$work/e"

load() {
	case $1 in
	none) ;;
	floor) insmod "$top/tests/fixtures/nullprobe/nullprobe.ko" ;;
	refledger) insmod "$top/refledger.ko" ;;
	esac
}
unload() {
	case $1 in
	none) ;;
	floor) rmmod nullprobe ;;
	refledger) rmmod refledger ;;
	esac
}
ops() { sed -n 's/.*ops_per_sec=\([0-9.]*\).*/\1/p'; }

# workload NAME COMMAND...: one measurement, appended to the raw file.
measure() {
	local cfg=$1 name=$2
	shift 2
	local r
	r=$("$@" | ops)
	echo "$name $cfg $r" >>"$raw"
}

for round in $(seq "$ROUNDS"); do
	for cfg in none floor refledger; do
		load $cfg
		measure $cfg mount_tmpfs "$churn" mount-tmpfs 2000 "$work/t"
		measure $cfg mount_ext4 "$churn" mount-ext4 300 "$loop" "$work/e"
		measure $cfg bdev_openclose "$churn" openclose 20000 "$loop"
		measure $cfg module_getput "$churn" openclose 20000 /dev/swapblk0
		unload $cfg
	done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
{
	echo "# refledger benchmark, $(uname -r), $(nproc) CPUs, $ROUNDS rounds, medians"
	echo "# ops/s: none = nothing loaded; floor = same probes, empty handlers; refledger = loaded"
	echo "# ratio = refledger / none (goal >= 0.95); cost/floor = refledger's added time per op"
	echo "# divided by the floor's added time per op (goal <= 1.5; < 1 means within noise)"
	printf '%-16s %12s %12s %12s %8s %8s %10s\n' workload none floor refledger ratio floor/none cost/floor
	for w in mount_tmpfs mount_ext4 bdev_openclose module_getput; do
		n=$(awk -v w=$w '$1 == w && $2 == "none" { print $3 }' "$raw" | median)
		f=$(awk -v w=$w '$1 == w && $2 == "floor" { print $3 }' "$raw" | median)
		r=$(awk -v w=$w '$1 == w && $2 == "refledger" { print $3 }' "$raw" | median)
		awk -v w=$w -v n="$n" -v f="$f" -v r="$r" 'BEGIN {
			tn = 1 / n; tf = 1 / f; tr = 1 / r
			cost = (tf - tn > 0) ? sprintf("%.2f", (tr - tn) / (tf - tn)) : "n/a"
			printf "%-16s %12.1f %12.1f %12.1f %8.3f %8.3f %10s\n", w, n, f, r, r / n, f / n, cost
		}'
	done
} >"$res"

# Memory: refledger allocates its tables at load; churn must not grow it.
meminfo() { awk '/^(Slab|VmallocUsed):/ { s += $2 } END { print s }' /proc/meminfo; }
sync; echo 3 >/proc/sys/vm/drop_caches
m0=$(meminfo)
insmod "$top/refledger.ko"
m1=$(meminfo)
"$churn" mount-tmpfs 100000 "$work/t" >/dev/null
sync; echo 3 >/proc/sys/vm/drop_caches
m2=$(meminfo)
"$churn" openclose 100000 "$loop" >/dev/null
sync; echo 3 >/proc/sys/vm/drop_caches
m3=$(meminfo)
head -n1 $D/superblocks >"$work/hdr"
{
	echo
	echo "# memory (Slab + VmallocUsed, kB): refledger's tables are allocated at load"
	echo "memory_at_load_kb $((m1 - m0))"
	echo "memory_growth_after_100k_tmpfs_mount_umount_kb $((m2 - m1))"
	echo "memory_growth_after_100k_loop_open_close_kb $((m3 - m2))"
	echo "superblocks_header $(cat "$work/hdr")"
	echo "bdevs_header $(head -n1 $D/bdevs)"
	echo "events_header $(head -n1 $D/events)"
} >>"$res"

# Read cost with 10,000 live superblocks.
mkdir -p "$work/hold"
"$churn" mount-hold 10000 "$work/hold" >/dev/null
t0=$(date +%s%N)
lines=$(wc -l <$D/superblocks)
t1=$(date +%s%N)
{
	echo
	echo "# read cost: one read of superblocks with 10,000 extra tmpfs mounts (goal: well under 1 s)"
	echo "read_superblocks_lines $lines"
	echo "read_superblocks_ms $(((t1 - t0) / 1000000))"
	echo "superblocks_header_10k $(head -n1 $D/superblocks)"
	echo
	echo "# peer: bpftrace"
	if ! command -v bpftrace >/dev/null; then
		echo "bpftrace not run: not installed, and the test kernel has no CONFIG_BPF_SYSCALL or BTF"
	elif [ ! -e /sys/kernel/btf/vmlinux ]; then
		echo "bpftrace not run: the test kernel has no BTF (CONFIG_DEBUG_INFO_BTF needs DEBUG_INFO and pahole)"
	fi
	echo
	echo "# raw measurements (workload config ops_per_sec), in run order"
	cat "$raw"
} >>"$res"
