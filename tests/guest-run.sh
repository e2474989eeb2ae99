#!/bin/bash
# Runs inside the test VM: every tests/t*.sh in order, as one KTAP document on
# stdout and in OUTDIR/ktap.txt, then the kernel log in OUTDIR/dmesg.txt:
# every message of the run, then kmemleak's report of a final scan when the
# kernel has kmemleak.  The ring buffer holds only the last 128 KiB or so,
# which one test can overflow: the log is followed as it is written, and,
# as a burst can overrun the follower, each test's messages are also read
# (and cleared) from the buffer after it, and appended.
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
# dmesg --follow prints the buffer so far, then each message as it comes.
stdbuf -oL dmesg --follow >"$out/dmesg.txt" 2>/dev/null &
follower=$!
# On a distribution kernel loop is a module, and nothing here creates
# /dev/loop-control, whose open would load it; filesystems load on mount.
modprobe -q loop 2>/dev/null
mkdir -p /mnt

# The OpenZFS tests go last: OpenZFS's own locking trips lockdep (see
# scripts/ktap.py), which then turns itself off for the rest of the boot.
if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=()
	for t in "$top"/tests/t[0-9]*.sh; do [[ $t == *zfs* ]] || tests+=("$t"); done
	for t in "$top"/tests/t[0-9]*.sh; do [[ $t == *zfs* ]] && tests+=("$t"); done
fi

run() {
	echo "KTAP version 1"
	echo "1..${#tests[@]}"
	local n=0 t name rc
	for t in "${tests[@]}"; do
		n=$((n + 1))
		name=$(basename "$t" .sh)
		echo "    KTAP version 1"
		echo "    # Subtest: $name"
		timeout 1500 bash "$t" 2>&1 | sed -u 's/^/    /'
		rc=${PIPESTATUS[0]}
		case $rc in
		0) echo "ok $n $name" ;;
		4) echo "ok $n $name # SKIP" ;;
		*) echo "not ok $n $name # exit status $rc" ;;
		esac
		# Leave a clean slate for the next test, whatever this one did.
		rmmod refledger 2>/dev/null
		umount -R /mnt 2>/dev/null
		dmesg --read-clear >>"$out/dmesg-tests.txt"
	done
}
run | tee "$out/ktap.txt"

# After the last rmmod: memory that nothing references any more.  A scan
# reports objects at least 5 s old, and a second one confirms them.
kml=/sys/kernel/debug/kmemleak
if [ -w "$kml" ]; then
	sleep 5
	echo scan >"$kml" && echo scan >"$kml"
	# Logged with the kernel's messages, which scripts/ktap.py judges.
	cat "$kml" >"$out/kmemleak.txt"
	echo "# kmemleak: $(grep -c '^unreferenced object' "$out/kmemleak.txt") unreferenced objects after the run"
fi
sleep 1
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
{
	echo "Each test's messages, read from the buffer after it:"
	cat "$out/dmesg-tests.txt"
	dmesg
	if [ -s "$out/kmemleak.txt" ]; then
		echo "kmemleak report (/sys/kernel/debug/kmemleak) after the last test:"
		cat "$out/kmemleak.txt"
	fi
} >>"$out/dmesg.txt"
rm -f "$out/dmesg-tests.txt"
