#!/bin/bash
# The guest side of `make bench`.  Every figure is a ratio measured side by
# side in one boot: each workload runs with nothing loaded ("none"), with
# nullprobe (the same probes with empty handlers: "floor"), with refledger,
# and with bpftrace running tests/bench/peer.bt ("peer") where bpftrace can
# run, interleaved over several rounds; each round gives its own ratios and
# the table shows their medians.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1
churn=$out/churn
D=/sys/kernel/debug/refledger
raw=$out/raw.txt
res=$out/results.txt
: >"$raw"
ROUNDS=${ROUNDS:-9}
. "$top/tests/bench/common.sh"
bench_setup

# The peer, bpftrace running tests/bench/peer.bt, if it can run here.
peer_setup

# The floor arms exactly the probes refledger arms here.
np_args=$(nullprobe_args)
load() {
	case $1 in
	none) ;;
	# shellcheck disable=SC2086
	floor) insmod "$NULLPROBE" $np_args ;;
	refledger) insmod "$KO" ;;
	peer) peer_start ;;
	esac
}
unload() {
	case $1 in
	none) ;;
	floor) rmmod nullprobe ;;
	refledger) rmmod refledger ;;
	peer) peer_stop ;;
	esac
}
# field NAME: the number churn printed as NAME=.
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

# Configurations alternate order from round to round (none, floor,
# refledger, peer, then the reverse), so a slow drift of the host's speed
# does not always favour the same one.
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order="none floor refledger $peer"; else order="$peer refledger floor none"; fi
	for cfg in $order; do
		load $cfg
		settle
		for w in $WORKLOADS; do
			echo "$round $w $cfg $(run_workload $w "${OPS[$w]}" | field ops_per_sec)" >>"$raw"
		done
		unload $cfg
		sleep 1
	done
done

# Each round gives its own ratios, from measurements taken minutes apart at
# most; the table shows their medians, which the host's noise moves far less
# than a ratio of medians taken over the whole run.
{
	echo "# refledger benchmark, kernel $(uname -r), $(nproc) CPUs, $ROUNDS rounds"
	echo "# ops/s (median): none = nothing loaded; floor = nullprobe, the same probes with"
	echo "# empty handlers; refledger = loaded, everything armed, module tracking on;"
	echo "# peer = bpftrace running tests/bench/peer.bt ('-' when it cannot run)"
	echo "# X/none = X's ops/s over none's in the same round, median over rounds"
	echo "# gap = floor/none - refledger/none (goal: <= 0.03)"
	echo "# X_add = time X adds per op over none (us), median over rounds; noise = the median"
	echo "# absolute deviation of none's time per op"
	echo "# rl/peer = refledger's add over the peer's (goal: <= 0.20)"
	echo "# goals: 'timing: noise' where none's own spread is over half of what"
	echo "# refledger adds (waits on timers); the instruction profile judges those rows"
	awk -v workloads="$WORKLOADS" -f "$top/tests/bench/table.awk" "$raw"
	echo "# peer: $peer_why"
	echo "# zfs: ${zfs_why:-not tried}"
	echo "# floor's probes: $np_args"
} >"$res"

# Memory: refledger allocates its tables at load; churn must not grow it.
# 100,000 cycles of the fast workloads; the mounts of a real filesystem
# take milliseconds each under TCG, so they get fewer.
meminfo() { awk '/^(Slab|VmallocUsed):/ { s += $2 } END { print s }' /proc/meminfo; }
settled_meminfo() { sync; echo 3 >/proc/sys/vm/drop_caches; sleep 2; meminfo; }
declare -A MEM_OPS=([mount_tmpfs]=100000 [bdev_openclose]=100000 [module_getput]=100000
	[mount_ext4]=1000 [mount_xfs]=300 [mount_btrfs]=300 [zfs_churn]=20)
m0=$(settled_meminfo)
insmod "$KO"
m1=$(settled_meminfo)
{
	echo
	echo "# memory (Slab + VmallocUsed, kB, after sync and drop_caches): refledger's"
	echo "# tables are allocated at load; growth after each churn, in order"
	echo "memory_at_load_kb $((m1 - m0))"
} >>"$res"
prev=$m1
for w in $WORKLOADS; do
	run_workload $w "${MEM_OPS[$w]}" >/dev/null
	m=$(settled_meminfo)
	echo "memory_growth_after_${MEM_OPS[$w]}_${w}_kb $((m - prev))" >>"$res"
	prev=$m
done
{
	echo "memory_growth_total_kb $((prev - m1))"
	echo "superblocks_header $(head -n1 $D/superblocks)"
	echo "bdevs_header $(head -n1 $D/bdevs)"
	echo "events_header $(head -n1 $D/events)"
	echo "modules_header $(head -n1 $D/modules)"
	echo "zfs_header $(head -n1 $D/zfs 2>/dev/null)"
} >>"$res"

# Read cost with 10,000 and then 100,000 live superblocks (tmpfs mounts),
# timed inside one process (churn read), so the figure is the read's own:
# a shell timing `wc` counts the fork and exec of `date` and `wc` too.
echo 1000000 >/proc/sys/fs/mount-max
nreads=3
read_cost() {
	local read_out lines secs
	read_out=$("$churn" read $nreads $D/superblocks)
	lines=$(echo "$read_out" | field lines)
	secs=$(echo "$read_out" | field seconds)
	{
		echo "read_superblocks_${1}_lines $lines"
		if [ -n "$secs" ]; then
			echo "read_superblocks_${1}_ms $(awk -v s="$secs" -v n=$nreads 'BEGIN { printf "%d", s * 1000 / n }')"
		else
			echo "read_superblocks_${1}_ms failed (churn read: $read_out)"
		fi
		echo "superblocks_header_${1} $(head -n1 $D/superblocks)"
	} >>"$res"
}
{
	echo
	echo "# read cost: a read of superblocks with 10,000 and 100,000 extra tmpfs"
	echo "# mounts, the mean of $nreads reads (goal: 10,000 in under 100 ms)"
} >>"$res"
mkdir -p "$work/hold" "$work/hold2"
"$churn" mount-hold 10000 "$work/hold" >/dev/null
read_cost 10k
"$churn" mount-hold 90000 "$work/hold2" >/dev/null
read_cost 100k
{
	echo
	echo "# raw measurements (round workload config ops_per_sec), in run order"
	cat "$raw"
} >>"$res"
