#!/bin/bash
# The guest side of `make bench`'s instruction profile: QEMU's tbcount
# plugin (tests/bench/tbcount.c) counts every kernel instruction, and this
# script marks windows with sync(2), one per configuration and workload.
# scripts/profile.py turns the counts into instructions per operation.
#
#   tests/bench-profile.sh PROFDIR CHURN
#
# Writes PROFDIR/windows.txt ("window config workload ops": window N is the
# plugin's dump N) and PROFDIR/kallsyms.CONFIG, the symbols with each
# configuration loaded.  CHURN is tests/bench/churn.c, built.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
prof=$1
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

mark
for cfg in none floor refledger; do
	case $cfg in
	floor) insmod "$top/tests/fixtures/nullprobe/nullprobe.ko" ;;
	refledger) insmod "$top/refledger.ko" ;;
	esac
	cat /proc/kallsyms >"$prof/kallsyms.$cfg"
	settle
	window $cfg mount_tmpfs 2000 "$churn" mount-tmpfs 2000 "$work/t"
	window $cfg mount_ext4 100 "$churn" mount-ext4 100 "$loop" "$work/e"
	window $cfg bdev_openclose 20000 "$churn" openclose 20000 "$loop"
	window $cfg module_getput 20000 "$churn" openclose 20000 /dev/swapblk0
	case $cfg in
	floor) rmmod nullprobe ;;
	refledger) rmmod refledger ;;
	esac
done
echo "profile: $marks windows marked"
