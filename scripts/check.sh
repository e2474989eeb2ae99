#!/usr/bin/env bash
# `make check`: installs what is missing, builds the test kernel (or takes it
# from the cache), builds refledger.ko and the fixtures, checks clippy and
# rustfmt, boots the test kernel and runs tests/t*.sh in it.  Ends with
# "N passed, N failed" and exits non-zero on any failure, including a
# warning, bug, lockdep or KASAN report in the guest's kernel log.
#
# RL_TESTS="tests/t02-probes.sh ..." runs only those guest tests.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"
cd "$top"

start=$(date +%s)
"$here/deps.sh" || exit 1
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$here/kernel.sh") || exit 1
fi
export KDIR
echo "refledger: kernel ready after $(( $(date +%s) - start ))s: $KDIR"

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

built=1
step "refledger.ko builds without warnings" "$here/build.sh" module || built=0
step "test fixtures build without warnings" "$here/build.sh" fixtures || built=0
step "clippy is clean (make clippy)" "$here/build.sh" clippy
step "rustfmt is clean (make fmtcheck)" "$here/build.sh" fmtcheck
# OpenZFS for tests/t09-zfs.sh, built against the test kernel and cached.
zfs_dir() { "$here/zfs.sh" >"$out/zfs-dir.tmp" && tail -n1 "$out/zfs-dir.tmp" >"$out/zfs-dir"; }
step "OpenZFS 2.3.2 modules build against the test kernel (scripts/zfs.sh)" zfs_dir

if [ "$built" = 1 ]; then
	# shellcheck disable=SC2086
	"$here/vm.sh" "$KDIR" "$out" 1800 "$top/tests/guest-run.sh" "$out" ${RL_TESTS:-} \
		>"$out/vm.log" 2>&1
	rc=$?
	grep -vE '^\[ *[0-9]+\.[0-9]+\]' "$out/vm.log" | grep -E '^ *(KTAP|ok|not ok|#|1\.\.)' || true
	if [ "$rc" != 0 ]; then
		echo "refledger: the VM exited with status $rc; console in $out/console.log" >&2
		tail -n 30 "$out/vm.log" >&2
		echo "not ok $((n + 1)) the test VM ran to the end (status $rc)" >>"$host"
	fi
fi
echo "refledger: took $(( $(date +%s) - start ))s"
python3 "$here/ktap.py" "$out/ktap.txt" "$out/dmesg.txt" "$host"
