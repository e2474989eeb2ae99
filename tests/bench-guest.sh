#!/bin/bash
# The guest side of `make bench`.  Every figure is a ratio measured side by
# side in one boot: each workload runs with nothing loaded ("none"), with
# nullprobe (the same probes with empty handlers: "floor") and with
# refledger, interleaved over several rounds; each round gives its own ratios
# and the table shows their medians.
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
ROUNDS=${ROUNDS:-9}

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
	if [ $((round % 2)) = 1 ]; then order="none floor refledger"; else order="refledger floor none"; fi
	for cfg in $order; do
		load $cfg
		measure $round $cfg mount_tmpfs "$churn" mount-tmpfs 1000 "$work/t"
		measure $round $cfg mount_ext4 "$churn" mount-ext4 150 "$loop" "$work/e"
		measure $round $cfg bdev_openclose "$churn" openclose 10000 "$loop"
		measure $round $cfg module_getput "$churn" openclose 10000 /dev/swapblk0
		unload $cfg
	done
done

# Each round gives its own ratios, from measurements taken minutes apart at
# most; the table shows their medians, which the host's noise moves far less
# than a ratio of medians taken over the whole run.
{
	echo "# refledger benchmark, $(uname -r), $(nproc) CPUs, $ROUNDS rounds"
	echo "# ops/s (median): none = nothing loaded; floor = nullprobe, the same probes with"
	echo "# empty handlers; refledger = loaded, everything armed, module tracking on"
	echo "# ratio = refledger / none in the same round, median over rounds (goal >= 0.95)"
	echo "# floor = floor / none likewise; added_us = time added per op over none, median"
	echo "# cost/floor = refledger's added time / the floor's (goal <= 1.5); n/a when the"
	echo "# floor adds less than the rounds' spread of none, where the quotient is noise"
	printf '%-16s %10s %10s %10s %7s %7s %9s %9s %10s\n' \
		workload none floor refledger ratio floor rl_add_us fl_add_us cost/floor
	for w in mount_tmpfs mount_ext4 bdev_openclose module_getput; do
		awk -v w=$w '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$2 == w { v[$1, $3] = $4; rounds[$1] = 1 }
		END {
			n = 0
			for (r in rounds) {
				if (!v[r, "none"] || !v[r, "floor"] || !v[r, "refledger"]) continue
				n++
				N[n] = v[r, "none"]; F[n] = v[r, "floor"]; R[n] = v[r, "refledger"]
				RR[n] = R[n] / N[n]; FR[n] = F[n] / N[n]
				RA[n] = 1e6 / R[n] - 1e6 / N[n]; FA[n] = 1e6 / F[n] - 1e6 / N[n]
				T[n] = 1e6 / N[n]
			}
			if (!n) { printf "%-16s no complete round\n", w; exit }
			tmin = 1e18; tmax = 0
			for (i = 1; i <= n; i++) { if (T[i] < tmin) tmin = T[i]; if (T[i] > tmax) tmax = T[i] }
			ra = median(RA, n); fa = median(FA, n)
			cost = (fa > tmax - tmin && fa > 0) ? sprintf("%.2f", ra / fa) : "n/a"
			printf "%-16s %10.1f %10.1f %10.1f %7.3f %7.3f %9.2f %9.2f %10s\n", w,
				median(N, n), median(F, n), median(R, n), median(RR, n), median(FR, n), ra, fa, cost
		}' "$raw"
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
	echo "# raw measurements (round workload config ops_per_sec), in run order"
	cat "$raw"
} >>"$res"
