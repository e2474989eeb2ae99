#!/bin/bash
# The guest side of `make bench`'s instruction profile: QEMU's tbcount
# plugin (tests/bench/tbcount.c) counts every kernel instruction, and this
# script marks windows with sync(2), one per configuration and workload.
# scripts/profile.py turns the counts into instructions per operation.
#
#   [RL_BUILD=DIR] tests/bench-profile.sh PROFDIR CHURN
#
# Writes PROFDIR/windows.txt ("window config workload ops": window N is the
# plugin's dump N) and PROFDIR/kallsyms.CONFIG, the symbols with each
# configuration loaded.  CHURN is tests/bench/churn.c, built.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
prof=$1
out=$prof
churn=$2
: >"$prof/windows.txt"
. "$top/tests/bench/common.sh"
bench_setup
# The symbol addresses scripts/profile.py needs.
echo 0 >/proc/sys/kernel/kptr_restrict

# Each sync(2) ends the plugin's current window: the first one the kernel
# sees is dump 0.  Nothing else in the guest calls sync.
marks=0
mark() {
	sync
	marks=$((marks + 1))
}

# window CONFIG NAME OPS COMMAND...: runs COMMAND alone in a window.
window() {
	local cfg=$1 name=$2 n=$3
	shift 3
	mark
	"$@" >/dev/null
	mark
	echo "$((marks - 1)) $cfg $name $n" >>"$prof/windows.txt"
}

# Operations per window: enough that a window's fixed costs vanish.
declare -A PROF_OPS=([mount_tmpfs]=2000 [mount_ext4]=100 [mount_xfs]=60 [mount_btrfs]=40
	[bdev_openclose]=20000 [module_getput]=20000 [zfs_churn]=4)
np_args=$(nullprobe_args)
# The peer too, where bpftrace runs: kallsyms names its BPF programs while
# they are loaded (module [bpf]), so scripts/profile.py counts its functions
# as well as its window's total.
peer_setup
echo "profile: peer: ${peer:-not run}: $peer_why"
mark
for cfg in none floor refledger $peer; do
	case $cfg in
	# shellcheck disable=SC2086
	floor) insmod "$NULLPROBE" $np_args ;;
	refledger) insmod "$KO" ;;
	peer) peer_start || { echo "profile: the peer did not start"; continue; } ;;
	esac
	cat /proc/kallsyms >"$prof/kallsyms.$cfg"
	settle
	for w in $WORKLOADS; do
		window $cfg $w "${PROF_OPS[$w]}" run_workload $w "${PROF_OPS[$w]}"
	done
	case $cfg in
	floor) rmmod nullprobe ;;
	refledger) rmmod refledger ;;
	peer) peer_stop ;;
	esac
done
# Where a read of superblocks goes, with 10,000 extra tmpfs mounts.
insmod "$KO"
mkdir -p "$work/hold"
"$churn" mount-hold 10000 "$work/hold" >/dev/null
cat /proc/kallsyms >"$prof/kallsyms.read"
window read read_superblocks_10k 1 "$churn" read 1 /sys/kernel/debug/refledger/superblocks
rmmod refledger
echo "profile: $marks windows marked"
