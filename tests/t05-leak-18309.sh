#!/bin/bash
# OpenZFS #18309, reproduced by the leakyfs fixture: a zfsvfs_hold()-shaped
# function takes s_active with atomic_inc_not_zero, finds the dataset torn
# down and returns EBUSY without releasing.  After unmount the superblock
# has no mounts and s_active=1: refledger must flag it within the grace
# period plus one audit period, with its evidence; a repair release must
# move it to resolved and let generic_shutdown_super run.
. "$(dirname "$0")/lib.sh"

fixture=$RL_FIX/leakyfs/leakyfs.ko
ctl=/sys/kernel/debug/leakyfs/ctl
grace=$((3000 * RL_SCALE))
audit=500

t_ok "insmod refledger" rl_load
t_ok "insmod the leakyfs fixture" insmod "$fixture"
echo "grace_ms=$grace" >"$RL_DBG/control"
echo "audit_ms=$audit" >"$RL_DBG/control"
mnt=$(mktemp -d)
t_ok "mount leakyfs dataset tank-18309" mount -t leakyfs tank-18309 $mnt
dev=$(mountpoint -d $mnt)
t_ok "a hold on a healthy dataset succeeds and releases" bash -c "echo 'hold tank-18309' > $ctl"
t_ok "teardown marks the dataset unmounted" bash -c "echo 'teardown tank-18309' > $ctl"
t_ok "a hold on the torn-down dataset fails with EBUSY" \
	test "$(write_errno $ctl 'hold tank-18309\n')" = EBUSY
mark=$(dmesg_mark)
t_ok "umount succeeds (the leak is invisible to userspace)" umount $mnt
start=$(ms_now)
diag "$(sb_line "$dev")"
t_ok "right after umount: detached, not yet flagged" \
	bash -c "[ \"\$(sb_field $dev state)\" = detached ] && ! grep -q 's_id=tank-18309' $RL_DBG/leaks"
# Watched through dmesg alone: no read walks the superblocks for the
# background audit, which must flag the leak by itself.
t_ok "flagged in dmesg within grace + one audit period (+1 s slack), with nothing read" \
	wait_for $(((grace + audit) / 1000 + 2)) \
	bash -c "dmesg_since $mark | grep -q 'refledger: leaked superblock .*(leakyfs tank-18309)'"
diag "flagged after about $(($(ms_now) - start)) ms (grace ${grace} ms, audit ${audit} ms)"
t_ok "leaks lists it as leaked" grep -q 's_id=tank-18309 .*state=leaked' "$RL_DBG/leaks"
cat "$RL_DBG/leaks" | sed 's/^/# /'
line=$(grep '^superblock .*s_id=tank-18309' "$RL_DBG/leaks")
t_ok "leak shows fstype=leakyfs" grep -q 'fstype=leakyfs' <<<"$line"
t_ok "leak shows mounts=0" grep -q ' mounts=0 ' <<<"$line"
t_ok "leak shows s_active=1, all of it unexplained" grep -q ' s_active=1 mounts=0 unexplained=1 ' <<<"$line"
t_ok "leak shows how long it stalled" grep -qE ' stalled_ms=[0-9]+ ' <<<"$line"
t_ok "evidence: the last release came from cleanup_mnt" \
	grep -A20 's_id=tank-18309' "$RL_DBG/leaks" | grep -q 'release .*caller=cleanup_mnt'
t_ok "evidence: the fixture's own release has its stack, down to the write(2)" \
	bash -c "grep -A30 's_id=tank-18309' $RL_DBG/leaks | grep -A3 'release .*caller=leakyfs_ctl_write' | grep -q '^    at vfs_write+'"
# mount(2)'s path: up to 6.17 its own caller, do_new_mount; since, mount(2)
# reaches setup_mnt through fc_mount, which in-kernel mounts share, and the
# evidence says the task was in mount(2).
mount2_acquire() {
	grep -A30 's_id=tank-18309' "$RL_DBG/leaks" | grep -qE \
		'^ *acquire .*kind=mount .*comm=mount caller=(do_new_mount\+.*|fc_mount\+.* syscall=mount)$'
}
t_ok "evidence: the mount names mount(2)'s path as its caller" mount2_acquire
t_ok "evidence: the mount is listed as an acquisition" \
	bash -c "grep -A20 's_id=tank-18309' $RL_DBG/leaks | grep -q 'acquire .*kind=mount'"
t_ok "superblocks shows it leaked" test "$(sb_field "$dev" state)" = leaked
t_ok "dmesg has one refledger line for it" \
	bash -c "dmesg | grep -c 'refledger: leaked superblock .*(leakyfs tank-18309)' | grep -qx 1"
t_ok "dmesg has no WARN splat" bash -c "! dmesg | grep -q 'WARNING:'"
t_ok "events show the leak" grep -q 'event=leak .*s_id=tank-18309' "$RL_DBG/events"
t_ok "the fixture module is pinned by the leaked superblock" bash -c "! rmmod leakyfs 2>/dev/null"

t_ok "repair: the missing release" bash -c "echo 'repair tank-18309' > $ctl"
t_ok "generic_shutdown_super ran for it" \
	wait_for 3 grep -q 'event=shutdown .*s_id=tank-18309' "$RL_DBG/events"
line=$(grep '^superblock .*s_id=tank-18309' "$RL_DBG/leaks")
diag "$line"
t_ok "the leak is kept as resolved" grep -q 'state=resolved' <<<"$line"
stalled=$(sed -n 's/.* stalled_ms=\([0-9]*\) .*/\1/p' <<<"$line")
t_ok "resolved shows a stall of at least the grace period ($stalled ms)" test "${stalled:-0}" -ge "$grace"
t_ok "rmmod leakyfs succeeds after the repair" rmmod leakyfs
t_ok "rmmod refledger succeeds" rl_unload
t_done
