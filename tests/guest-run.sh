#!/bin/bash
# Runs inside the test VM: every tests/t*.sh in order, as one KTAP document on
# stdout and in OUTDIR/ktap.txt, then the kernel log in OUTDIR/dmesg.txt.
#
#   [RL_BUILD=DIR] tests/guest-run.sh OUTDIR [TEST...]
#
# RL_BUILD is where refledger.ko and tests/fixtures/*/*.ko were built for the
# running kernel (default: this tree).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1
shift
export RL_TOP=$top RL_BUILD=${RL_BUILD:-$top} RL_OUT=$out
export RL_KO=$RL_BUILD/refledger.ko
echo "# kernel $(uname -r)"

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# On a distribution kernel loop is a module, and nothing here creates
# /dev/loop-control, whose open would load it; filesystems load on mount.
modprobe -q loop 2>/dev/null
mkdir -p /mnt

if [ $# -gt 0 ]; then tests=("$@"); else tests=("$top"/tests/t[0-9]*.sh); fi

run() {
	echo "KTAP version 1"
	echo "1..${#tests[@]}"
	local n=0 t name rc
	for t in "${tests[@]}"; do
		n=$((n + 1))
		name=$(basename "$t" .sh)
		echo "    KTAP version 1"
		echo "    # Subtest: $name"
		timeout 600 bash "$t" 2>&1 | sed -u 's/^/    /'
		rc=${PIPESTATUS[0]}
		case $rc in
		0) echo "ok $n $name" ;;
		4) echo "ok $n $name # SKIP" ;;
		*) echo "not ok $n $name # exit status $rc" ;;
		esac
		# Leave a clean slate for the next test, whatever this one did.
		rmmod refledger 2>/dev/null
		umount -R /mnt 2>/dev/null
	done
}
run | tee "$out/ktap.txt"
dmesg >"$out/dmesg.txt"
