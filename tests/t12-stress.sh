#!/bin/bash
# Stress: while mounts churn in parallel (tmpfs, and ext4 and xfs on loop
# devices), block devices are opened and closed (a loop device, and the
# swapblk fixture's disk, whose opens get and put swapblk), fixture modules
# (and OpenZFS, when built for this kernel) load and unload, other processes
# read every debugfs file and write reset, audit and grace_ms= to control,
# refledger itself is unloaded and loaded 20 times.  Every read, write,
# mount, load and unload succeeds; afterwards no false leak is listed, and
# the leakyfs (OpenZFS #18309) and swapblk (elastio-snap #163) fixtures are
# each still flagged exactly once.  Then an unprivileged user mounts tmpfs
# in a user namespace as fast as it can, and refledger's memory (its table's
# own count, and its vmalloc use) does not grow with it.
#
# RL_STRESS_SECS (default 150) and RL_USERNS_SECS (default 60) scale it.
. "$(dirname "$0")/lib.sh"

secs=${RL_STRESS_SECS:-150}
userns_secs=${RL_USERNS_SECS:-60}
cycles=20
work=$(mktemp -d /tmp/rl-stress.XXXXXX)
# Traversable by the unprivileged user below.
chmod 755 "$work"
stop=$work/stop
lock=$work/lock
: >"$lock"
loops=()
cleanup() {
	touch "$stop"
	wait
	local d
	for d in "$work"/m*; do mountpoint -q "$d" && umount "$d"; done
	for d in "${loops[@]}"; do losetup -d "$d"; done
	# OpenZFS left loaded by a failed unload would fail the ZFS tests'
	# first steps too.
	if [ -n "$zdir" ]; then
		[ -d /sys/module/zfs ] && rmmod zfs
		[ -d /sys/module/spl ] && rmmod spl
	fi
	rm -rf "$work"
}
trap cleanup EXIT
start_ts=$(dmesg_mark)
# new_dmesg: the kernel log since this test started.
new_dmesg() { dmesg_since "$start_ts"; }
# flagged: refledger's dmesg lines for superblocks flagged since then,
# except leakyfs's, which is flagged on purpose.
flagged() { new_dmesg | grep 'refledger: leaked superblock' | grep -v 'tank-18309'; }

t_ok "insmod refledger" rl_load
modprobe -q ext4 2>/dev/null
modprobe -q xfs 2>/dev/null
have_xfs=0
grep -qw xfs /proc/filesystems && command -v mkfs.xfs >/dev/null && have_xfs=1

# Three loop devices: ext4, xfs (at least 300 MB for current mkfs.xfs;
# sparse on /tmp), and one only opened and closed.
mkloop() {
	truncate -s "$2" "$work/$1.img"
	losetup -f --show "$work/$1.img"
}
ext4_loop=$(mkloop ext4 64M) && loops+=("$ext4_loop")
raw_loop=$(mkloop raw 16M) && loops+=("$raw_loop")
t_ok "mkfs.ext4 on $ext4_loop" mkfs.ext4 -q "$ext4_loop"
if [ "$have_xfs" = 1 ]; then
	xfs_loop=$(mkloop xfs 320M) && loops+=("$xfs_loop")
	t_ok "mkfs.xfs on $xfs_loop" mkfs.xfs -q -f "$xfs_loop"
else
	t_skip "mkfs.xfs" "no xfs in this kernel or no mkfs.xfs"
fi
t_ok "insmod swapblk" insmod "$RL_FIX/swapblk/swapblk.ko"
udevadm settle 2>/dev/null
zdir=$(cat "${RL_OUT:-/nonexistent}/zfs-dir" 2>/dev/null)
[ -n "$zdir" ] && [ -e "$zdir/zfs.ko" ] || zdir=

# Each worker loops until $stop exists, then writes "N ERRORS" to
# $work/count.NAME.
report() { echo "$2 $3" >"$work/count.$1"; }
# The churn runs at a lower priority than what reads, writes, loads and
# unloads, which it would otherwise starve on a small machine.
lower() { renice -n 10 -p "$BASHPID" >/dev/null; }
# churn_mount NAME FSTYPE SOURCE: mount(2) on $work/mNAME and umount(2),
# without a fork for each (rlsys.py).
churn_mount() {
	local dir=$work/m$1 res
	lower
	mkdir -p "$dir"
	res=$(rlsys mountloop "$dir" 100000 100000000 "$2" "$3" "$stop")
	grep '^#' <<<"$res" >&2
	res=$(tail -n1 <<<"$res")
	report "$1" "$(sed -n 's/^cycles=\([0-9]*\) .*/\1/p' <<<"$res")" "$(sed -n 's/.* errors=//p' <<<"$res")"
}
# Opens and closes: a loop device, and swapblk0 (a get and a put of swapblk);
# with a pause now and then, as it would otherwise take most of the CPU.
churn_bdev() {
	local n=0 err=0
	lower
	while [ ! -e "$stop" ]; do
		{ :; } 3<"$raw_loop" || err=$((err + 1))
		{ :; } 3</dev/swapblk0 || err=$((err + 1))
		n=$((n + 2))
		[ $((n % 100)) = 0 ] && sleep 0.1
	done
	report bdev $n $err
}
# Readers and writers of refledger's files hold $lock shared; the load cycle
# below takes it exclusively while it unloads and loads, after raising
# $gate, which keeps new holders waiting so that it is not starved.
gate=$work/gate
shared() {
	while [ -e "$gate" ]; do sleep 0.05; done
	flock -s 8
}
# Reads every debugfs file, while refledger is loaded.
churn_read() {
	local n=0 err=0 f
	exec 8<"$lock"
	while [ ! -e "$stop" ]; do
		for f in "$RL_DBG"/*; do
			# One file at a time: the load cycle waits for one read at most.
			shared
			if [ -d "$RL_DBG" ]; then
				cat "$f" >/dev/null || err=$((err + 1))
				n=$((n + 1))
			fi
			flock -u 8
		done
		# While refledger is unloaded, the glob matches nothing.
		[ -d "$RL_DBG" ] || sleep 0.1
	done
	report "read$1" $n $err
}
# Writes reset, audit and grace periods of 2 to 10 s to control.
churn_control() {
	local n=0 err=0 cmd
	exec 8<"$lock"
	while [ ! -e "$stop" ]; do
		case $((RANDOM % 3)) in
		0) cmd=reset ;;
		1) cmd=audit ;;
		2) cmd=grace_ms=$((2000 + RANDOM % 8000)) ;;
		esac
		shared
		if [ -d "$RL_DBG" ]; then
			# Valid writes: the shell's status is enough (no fork).
			echo "$cmd" >"$RL_DBG/control" || err=$((err + 1))
			n=$((n + 1))
		fi
		flock -u 8
		sleep 0.1
	done
	report control $n $err
}
# rmmod_settled MODULE: rmmod, tried again for up to 10 seconds while it
# fails only because the module is in use.  A kprobe registered in a module
# holds a reference to it while it is being armed (try_module_get in
# check_kprobe_address_safe), so an rmmod zfs that meets refledger's load
# arming its ZFS probes fails with "in use", as it would with any kprobe
# tool; once the probes are armed the reference is gone.
rmmod_settled() {
	local i
	for i in $(seq 20); do
		rmmod "$1" 2>/dev/null && return 0
		[ "$(cat "/sys/module/$1/refcnt" 2>/dev/null)" != 0 ] || break
		echo "rmmod $1: in use (refcnt $(cat "/sys/module/$1/refcnt" 2>/dev/null)), again" >&2
		sleep 0.5
	done
	rmmod "$1"
}
# Loads and unloads fixture modules (nullprobe puts its own probes on
# refledger's functions; leakyfs is mounted and unmounted once loaded), and
# OpenZFS once, if it was built for this kernel.
churn_modules() {
	local n=0 err=0 dir=$work/mleaky
	mkdir -p "$dir"
	if [ -n "$zdir" ]; then
		if insmod "$zdir/spl.ko" && insmod "$zdir/zfs.ko"; then
			rmmod_settled zfs && rmmod_settled spl || err=$((err + 1))
		else
			err=$((err + 1))
		fi
		n=$((n + 1))
	fi
	while [ ! -e "$stop" ]; do
		insmod "$RL_FIX/nullprobe/nullprobe.ko" && rmmod nullprobe || err=$((err + 1))
		if insmod "$RL_FIX/leakyfs/leakyfs.ko"; then
			mount -t leakyfs tank-stress "$dir" && umount "$dir" || err=$((err + 1))
			rmmod leakyfs || err=$((err + 1))
		else
			err=$((err + 1))
		fi
		n=$((n + 2))
	done
	report modules $n $err
}
# Unloads and loads refledger $cycles times, spread over $secs seconds, or
# back to back if they take longer than that.
churn_refledger() {
	local n=0 err=0 due t0 t1 t2 t3
	exec 8<"$lock"
	while [ "$n" -lt "$cycles" ]; do
		due=$((start + secs * (n + 1) / (cycles + 1)))
		while [ "$(date +%s)" -lt "$due" ]; do sleep 0.5; done
		t0=$(date +%s%N)
		touch "$gate"
		flock -x 8
		t1=$(date +%s%N)
		rl_unload || err=$((err + 1))
		t2=$(date +%s%N)
		rl_load || err=$((err + 1))
		t3=$(date +%s%N)
		rm -f "$gate"
		flock -u 8
		echo "$(((t1 - t0) / 1000000)) $(((t2 - t1) / 1000000)) $(((t3 - t2) / 1000000))" >>"$work/cycle-ms"
		n=$((n + 1))
	done
	report refledger $n $err
}

start=$(date +%s)
# Each worker's error messages go to $work/err.NAME, shown below.
churn_mount tmpfs1 tmpfs none 2>"$work/err.tmpfs1" &
churn_mount tmpfs2 tmpfs none 2>"$work/err.tmpfs2" &
churn_mount ext4 ext4 "$ext4_loop" 2>"$work/err.ext4" &
[ "$have_xfs" = 1 ] && churn_mount xfs xfs "$xfs_loop" 2>"$work/err.xfs" &
churn_bdev 2>"$work/err.bdev" &
churn_read 1 2>"$work/err.read1" &
churn_read 2 2>"$work/err.read2" &
churn_control 2>"$work/err.control" &
churn_modules 2>"$work/err.modules" &
churn_refledger 2>"$work/err.refledger" &
refl=$!
# The load cycles set the pace; the rest runs until they are done.
wait "$refl"
touch "$stop"
wait
elapsed=$(($(date +%s) - start))

count() { cut -d' ' -f1 "$work/count.$1" 2>/dev/null || echo 0; }
errors() { cut -d' ' -f2 "$work/count.$1" 2>/dev/null || echo missing; }
mounts=0
for w in tmpfs1 tmpfs2 ext4 xfs; do
	[ -e "$work/count.$w" ] || continue
	diag "$w: $(count $w) mount cycles, $(errors $w) errors"
	t_ok "$w: every mount and umount succeeded" test "$(errors $w)" = 0
	mounts=$((mounts + $(count $w)))
done
reads=$(($(count read1) + $(count read2)))
diag "stress: $mounts mount cycles, $(count bdev) block device opens," \
	"$reads debugfs reads, $(count control) control writes," \
	"$(count modules) module loads, $(count refledger) refledger load cycles in ${elapsed}s"
diag "refledger load cycles, average ms: $(awk '{ w += $1; u += $2; l += $3 } END { if (NR) printf "%d waiting for readers, %d rmmod, %d insmod", w / NR, u / NR, l / NR }' "$work/cycle-ms" 2>/dev/null)"
for f in "$work"/err.*; do
	[ -s "$f" ] && sed "s/^/# $(basename "$f"): /" "$f" | head -n 5
done
t_ok "block devices: every open succeeded" test "$(errors bdev)" = 0
t_ok "debugfs: every read succeeded ($reads)" test "$(errors read1):$(errors read2)" = 0:0
t_ok "debugfs: reads happened" test "$reads" -gt 0
t_ok "control: every reset, audit and grace_ms= was accepted ($(count control))" test "$(errors control)" = 0
t_ok "fixture modules: every load and unload succeeded ($(count modules))" test "$(errors modules)" = 0
t_ok "refledger: $cycles unload and load cycles, all succeeded" \
	test "$(count refledger):$(errors refledger)" = "$cycles:0"
t_ok "refledger is loaded at the end" rl_loaded

# Whatever churned has been unmounted, closed or unloaded: nothing leaked.
write_errno "$RL_DBG/control" 'grace_ms=2000\n' >/dev/null
write_errno "$RL_DBG/control" 'audit_ms=500\n' >/dev/null
sleep 3.5
leaks_now() { grep -E '^superblock .*state=leaked|^module_underflow|^bdev_open_leak' "$RL_DBG/leaks"; }
leaks_now | head -n 10 | sed 's/^/# /'
# How often handlers gave up the ledger's lock: what they lose is listed in
# the README (handler_lock_contended); none of it may be a false leak.
diag "$(grep -o 'handler_lock_contended=[0-9]*' "$RL_DBG/superblocks")"
t_ok "no false leak after the churn" test -z "$(leaks_now)"
t_ok "no superblock was flagged during the churn" test -z "$(flagged)"

# The real leaks are still found, once each.  OpenZFS #18309, as in t05:
t_ok "insmod leakyfs" insmod "$RL_FIX/leakyfs/leakyfs.ko"
lctl=/sys/kernel/debug/leakyfs/ctl
mkdir -p "$work/mtank"
mount -t leakyfs tank-18309 "$work/mtank"
echo 'teardown tank-18309' >"$lctl"
t_ok "leakyfs: the hold on the torn-down dataset fails with EBUSY" \
	test "$(write_errno "$lctl" 'hold tank-18309\n')" = EBUSY
umount "$work/mtank"
t_ok "leakyfs: flagged within grace + audit" \
	wait_for 5 grep -q 's_id=tank-18309 .*state=leaked' "$RL_DBG/leaks"
t_ok "leakyfs: listed exactly once" test "$(grep -c '^superblock .*s_id=tank-18309' "$RL_DBG/leaks")" = 1
t_ok "leakyfs: reported exactly once in dmesg" \
	test "$(new_dmesg | grep -c 'refledger: leaked superblock .*(leakyfs tank-18309)')" = 1
echo 'repair tank-18309' >"$lctl"
t_ok "leakyfs: resolved after the repair" \
	wait_for 3 grep -q '^superblock .*s_id=tank-18309 .*state=resolved' "$RL_DBG/leaks"
t_ok "rmmod leakyfs" rmmod leakyfs

# elastio-snap #163, as in t08 (swapblk is still loaded from the churn):
t_ok "insmod swaptrace" insmod "$RL_FIX/swapblk/swaptrace.ko"
exec 5</dev/swapblk0
echo swap >/sys/kernel/debug/swaptrace/ctl
exec 5<&-
t_ok "swapblk: the misdirected put is flagged" \
	grep -qE '^module_underflow module=swaptrace balance_at_put=-1 ' "$RL_DBG/leaks"
t_ok "swapblk: flagged exactly once" test "$(grep -c '^module_underflow' "$RL_DBG/leaks")" = 1
echo restore >/sys/kernel/debug/swaptrace/ctl
t_ok "rmmod swaptrace and swapblk" bash -c "rmmod swaptrace && rmmod swapblk"

# An unprivileged user mounting tmpfs in its own user and mount namespace.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
userns_ok() {
	[ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" -gt 0 ] &&
		[ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" = 1 ] &&
		as_nobody unshare -Urm true 2>/dev/null
}
# header FIELD: a field of the superblocks file's header line.
header() { head -n1 "$RL_DBG/superblocks" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# refledger's tables are allocated through the kernel crate, so vmallocinfo
# does not name it: the whole kernel's vmalloc use, with a tolerance.
vmalloc_kb() { awk '$1 == "VmallocUsed:" { print $2 }' /proc/meminfo; }
slab_kb() { awk '$1 == "Slab:" { print $2 }' /proc/meminfo; }
umnt=$work/userns
mkdir -p "$umnt"
if ! userns_ok; then
	t_skip "unprivileged tmpfs mounts in a user namespace" \
		"user namespaces are not available to uid 65534 here (user.max_user_namespaces, kernel.unprivileged_userns_clone)"
else
	# A fresh load, and a first few hundred mounts: freed superblocks stay
	# listed in up to 256 slots, which this fills.
	rl_unload
	t_ok "insmod refledger for the user namespace run" rl_load
	write_errno "$RL_DBG/control" 'grace_ms=2000\n' >/dev/null
	write_errno "$RL_DBG/control" 'audit_ms=500\n' >/dev/null
	vm_load=$(vmalloc_kb)
	as_nobody unshare -Urm "$RL_PY" "$RL_TOP/tests/helpers/rlsys.py" mountloop "$umnt" 60 400 >/dev/null
	sleep 3
	tracked0=$(header tracked) cap0=$(header capacity) dropped0=$(header dropped)
	slab0=$(slab_kb)
	ustart=$(date +%s)
	res=$(as_nobody unshare -Urm "$RL_PY" "$RL_TOP/tests/helpers/rlsys.py" mountloop "$umnt" "$userns_secs" 100000)
	usecs=$(($(date +%s) - ustart))
	grep '^#' <<<"$res"
	res=$(tail -n1 <<<"$res")
	n=$(sed -n 's/^cycles=\([0-9]*\) .*/\1/p' <<<"$res")
	diag "userns: $n tmpfs mount cycles by uid 65534 in ${usecs}s ($res)"
	t_ok "userns: the mounts succeeded" test "${res#* }" = errors=0
	t_ok "userns: thousands of mount cycles" test "${n:-0}" -ge 1000
	sleep 3.5
	tracked1=$(header tracked) dropped1=$(header dropped)
	vm_end=$(vmalloc_kb) slab1=$(slab_kb)
	diag "userns: superblocks tracked $tracked0 -> $tracked1 (capacity $cap0), dropped $dropped0 -> $dropped1;" \
		"VmallocUsed ${vm_load} -> ${vm_end} KiB; Slab ${slab0} -> ${slab1} KiB"
	t_ok "userns: refledger tracks no more superblocks than before the loop" \
		test "$tracked1" -le "$tracked0"
	t_ok "userns: none dropped" test "$dropped1" = "$dropped0"
	t_ok "userns: vmalloc use within 1 MiB of what it was after load" test "$vm_end" -le $((vm_load + 1024))
	# KASAN's quarantine keeps freed objects in slab pages for a while
	# (up to 1/32 of memory): Slab gets a wide tolerance.
	t_ok "userns: Slab within 64 MiB of before the loop" test "$slab1" -le $((slab0 + 65536))
	t_ok "userns: no false leak" test -z "$(leaks_now)"
	t_ok "userns: no superblock flagged" test -z "$(flagged)"
fi
t_ok "rmmod refledger" rl_unload
t_done
