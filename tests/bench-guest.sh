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

# The peer: bpftrace running tests/bench/peer.bt, where it can run here.
bt_pid=
peer_start() {
	bpftrace "$top/tests/bench/peer.bt" >"$work/bt.log" 2>&1 &
	bt_pid=$!
	# Compiling and attaching takes a while under TCG.
	for _ in $(seq 600); do
		grep -q '^Attaching' "$work/bt.log" && { sleep 1; return 0; }
		kill -0 $bt_pid 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}
peer_stop() {
	kill -INT $bt_pid 2>/dev/null
	wait $bt_pid 2>/dev/null
}
peer=
if ! command -v bpftrace >/dev/null; then
	peer_why="bpftrace is not installed"
elif ! timeout 300 bpftrace -e 'BEGIN { exit(); }' >"$work/bt.log" 2>&1; then
	peer_why="bpftrace cannot run here: $(head -n3 "$work/bt.log" | tr '\n' ' ')"
elif ! peer_start; then
	peer_why="bpftrace could not attach peer.bt: $(head -n5 "$work/bt.log" | tr '\n' ' ')"
	peer_stop
else
	peer_stop
	peer=peer
	peer_why="bpftrace $(bpftrace --version | awk '{ print $2 }') ran tests/bench/peer.bt (no BTF: registers and fixed offsets)"
fi

load() {
	case $1 in
	none) ;;
	floor) insmod "$top/tests/fixtures/nullprobe/nullprobe.ko" ;;
	refledger) insmod "$top/refledger.ko" ;;
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
ops() { field ops_per_sec; }

# measure ROUND CONFIG NAME COMMAND...: one measurement, appended to the raw
# file.
measure() {
	local round=$1 cfg=$2 name=$3
	shift 3
	local r
	r=$("$@" | ops)
	echo "$round $name $cfg $r" >>"$raw"
}

# Configurations alternate order from round to round (none, floor,
# refledger, then the reverse), so a slow drift of the host's speed does not
# always favour the same one.
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order="none floor refledger $peer"; else order="$peer refledger floor none"; fi
	for cfg in $order; do
		load $cfg
		settle
		measure $round $cfg mount_tmpfs "$churn" mount-tmpfs 1000 "$work/t"
		measure $round $cfg mount_ext4 "$churn" mount-ext4 150 "$loop" "$work/e"
		measure $round $cfg bdev_openclose "$churn" openclose 10000 "$loop"
		measure $round $cfg module_getput "$churn" openclose 10000 /dev/swapblk0
		unload $cfg
		sleep 1
	done
done

# Each round gives its own ratios, from measurements taken a minute apart at
# most; the table shows their medians, which the host's noise moves far less
# than a ratio of medians taken over the whole run.
{
	echo "# refledger benchmark, $(uname -r), $(nproc) CPUs, $ROUNDS rounds"
	echo "# ops/s (median): none = nothing loaded; floor = nullprobe, the same probes with"
	echo "# empty handlers; refledger = loaded, everything armed, module tracking on;"
	echo "# peer = bpftrace running tests/bench/peer.bt ('-' when it cannot run)"
	echo "# ratio = X / none in the same round, median over rounds (goal >= 0.95 for refledger)"
	echo "# add_us = time X adds per op over none, median over rounds; noise_us = the"
	echo "# median absolute deviation of none's time per op"
	echo "# cost/floor = refledger's add_us / the floor's (goal <= 1.5); n/a when the floor"
	echo "# adds less than twice noise_us, where the quotient is noise"
	printf '%-15s %9s %9s %9s %9s | %7s %7s %7s | %8s %8s %8s %8s | %s\n' \
		workload none floor refledger peer fl/none rl/none pr/none \
		fl_add rl_add peer_add noise cost/floor
	for w in mount_tmpfs mount_ext4 bdev_openclose module_getput; do
		awk -v w=$w '
		function median(a, n,   i, j, t, b) {
			for (i = 1; i <= n; i++) b[i] = a[i]
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
			return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
		}
		$2 == w { v[$1, $3] = $4; rounds[$1] = 1 }
		END {
			n = 0; np = 0
			for (r in rounds) {
				if (!v[r, "none"] || !v[r, "floor"] || !v[r, "refledger"]) continue
				n++
				N[n] = v[r, "none"]; F[n] = v[r, "floor"]; R[n] = v[r, "refledger"]
				FR[n] = F[n] / N[n]; RR[n] = R[n] / N[n]
				T[n] = 1e6 / N[n]
				FA[n] = 1e6 / F[n] - T[n]; RA[n] = 1e6 / R[n] - T[n]
				if (v[r, "peer"]) {
					np++; P[np] = v[r, "peer"]; PR[np] = P[np] / N[n]; PA[np] = 1e6 / P[np] - T[n]
				}
			}
			if (!n) { printf "%-15s no complete round\n", w; exit }
			tm = median(T, n)
			for (i = 1; i <= n; i++) D[i] = (T[i] > tm) ? T[i] - tm : tm - T[i]
			noise = median(D, n)
			fa = median(FA, n); ra = median(RA, n)
			cost = (fa > 2 * noise && fa > 0) ? sprintf("%.2f", ra / fa) : "n/a"
			if (np) {
				p = sprintf("%9.1f", median(P, np)); pr = sprintf("%7.3f", median(PR, np))
				pa = sprintf("%8.2f", median(PA, np))
			} else {
				p = sprintf("%9s", "-"); pr = sprintf("%7s", "-"); pa = sprintf("%8s", "-")
			}
			printf "%-15s %9.1f %9.1f %9.1f %s | %7.3f %7.3f %s | %8.2f %8.2f %s %8.2f | %s\n", w,
				median(N, n), median(F, n), median(R, n), p, median(FR, n), median(RR, n), pr,
				fa, ra, pa, noise, cost
		}' "$raw"
	done
	echo "# peer: $peer_why"
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
# Reads timed inside one process (churn read), so the figure is the read's
# own: timed by the shell around `wc`, the fork and exec of `date` and `wc`
# over 9p counted too (a `date; true; date` alone measured 167 ms here).
nreads=3
read_out=$("$churn" read $nreads $D/superblocks)
lines=$(echo "$read_out" | field lines)
secs=$(echo "$read_out" | field seconds)
if [ -n "$lines" ] && [ -n "$secs" ]; then
	read_ms=$(awk -v s="$secs" -v n=$nreads 'BEGIN { printf "%d", s * 1000 / n }')
else
	read_ms="failed (churn read: $read_out)"
fi
{
	echo
	echo "# read cost: a read of superblocks with 10,000 extra tmpfs mounts, the mean of"
	echo "# $nreads (goal: well under 1 s)"
	echo "read_superblocks_lines $lines"
	echo "read_superblocks_ms $read_ms"
	echo "superblocks_header_10k $(head -n1 $D/superblocks)"
	echo
	echo "# raw measurements (round workload config ops_per_sec), in run order"
	cat "$raw"
} >>"$res"
