#!/bin/bash
# A reader must get an answer exactly when an unmount or a mount hangs,
# because that is when it reads.  The stuckfs fixture blocks a mount in
# fill_super (s_umount held, SB_BORN not set) or an unmount in kill_sb
# (s_active 0, s_umount held for writing), as a dead device does.  While
# either is held, every refledger file must be readable, control writes
# must work, refledger must unload and load again, and `leaks` must report
# the superblock as stuck, not as a leak.
#
# And a freeze is a holder: `fsfreeze -f` takes an s_active reference that
# stays after umount until the filesystem is mounted again and thawed.  A
# frozen, unmounted superblock must show as frozen, never as leaked.
. "$(dirname "$0")/lib.sh"

fixture=$RL_FIX/stuckfs/stuckfs.ko
par=/sys/module/stuckfs/parameters
grace=1000
files="superblocks leaks events probes bdevs modules zfs control"

t_ok "insmod the stuckfs fixture" insmod "$fixture"
t_ok "insmod refledger" rl_load
echo "grace_ms=$grace" >"$RL_DBG/control"
mnt=$(mktemp -d)

# all_readable WHAT: every file can be read within 10 s.
all_readable() {
	local f
	for f in $files; do
		t_ok "$1: $f is readable" timeout 10 cat "$RL_DBG/$f" >/dev/null
	done
}

# reload WHAT: refledger unloads and loads again, each within 30 s.
reload() {
	t_ok "$1: rmmod refledger returns" timeout 30 rmmod refledger
	t_ok "$1: insmod refledger returns and works" timeout 30 insmod "$RL_KO"
	echo "grace_ms=$grace" >"$RL_DBG/control"
}

# blocked PID FUNC: the task PID is blocked in the fixture's FUNC.
blocked() { grep -q "$2" "/proc/$1/stack" 2>/dev/null || grep -q "stuckfs" "/proc/$1/wchan" 2>/dev/null; }

# --- An unmount stuck in kill_sb.
t_ok "mount stuckfs" mount -t stuckfs stuck-kill "$mnt"
echo 1 >"$par/block_kill"
umount "$mnt" &
upid=$!
t_ok "umount is held in kill_sb" wait_for 10 blocked $upid stuckfs_kill_sb
sleep $((grace / 1000 + 1))
all_readable "unmount stuck in kill_sb"
line=$(timeout 10 grep '^stuck .*fstype=stuckfs' "$RL_DBG/leaks")
diag "$line"
t_ok "leaks reports the stuck unmount with s_umount held" \
	grep -qE 'state=dying stuck_ms=[0-9]+ s_active=0 s_umount=held verdict=shutdown_not_finishing' <<<"$line"
t_ok "the stuck superblock is not flagged as a leak" \
	bash -c "! timeout 10 grep -q '^superblock .*fstype=stuckfs' $RL_DBG/leaks"
t_ok "control: audit returns" timeout 10 bash -c "echo audit >$RL_DBG/control"
t_ok "control: reset returns" timeout 10 bash -c "echo reset >$RL_DBG/control"
reload "unmount stuck in kill_sb"
t_ok "after reload, the stuck superblock is listed as dying" \
	bash -c "timeout 10 grep 'fstype=stuckfs' $RL_DBG/superblocks | grep -q 'state=dying'"
echo 0 >"$par/block_kill"
t_ok "umount completes once released" wait $upid
t_ok "the superblock is gone from the ledger after release" \
	wait_for 10 bash -c "echo audit >$RL_DBG/control; ! grep 'fstype=stuckfs' $RL_DBG/superblocks | grep -qv 'state=freed'"

# --- A mount stuck in fill_super.
echo 1 >"$par/block_fill"
mount -t stuckfs stuck-fill "$mnt" &
mpid=$!
t_ok "mount is held in fill_super" wait_for 10 blocked $mpid stuckfs_fill_super
sleep $((grace / 1000 + 1))
all_readable "mount stuck in fill_super"
line=$(timeout 10 grep '^stuck .*fstype=stuckfs' "$RL_DBG/leaks")
diag "$line"
t_ok "leaks reports the stuck mount" \
	grep -qE 'state=mounting stuck_ms=[0-9]+ s_active=1 s_umount=held verdict=mount_not_finishing' <<<"$line"
reload "mount stuck in fill_super"
echo 0 >"$par/block_fill"
t_ok "mount completes once released" wait $mpid
t_ok "the new mount is live" \
	wait_for 10 bash -c "echo audit >$RL_DBG/control; grep 'fstype=stuckfs' $RL_DBG/superblocks | grep -q 'state=live'"
t_ok "umount" umount "$mnt"
t_ok "rmmod stuckfs" rmmod stuckfs

# --- A frozen filesystem, unmounted: held by the freeze.
img=$(mktemp /tmp/rl-frozen.XXXXXX)
truncate -s 64M "$img"
mkfs.ext4 -q -F "$img"
loopdev=$(losetup -f --show "$img")
t_ok "mount ext4 on a loop device" mount "$loopdev" "$mnt"
dev=$(mountpoint -d "$mnt")
t_ok "fsfreeze -f" fsfreeze -f "$mnt"
t_ok "umount of the frozen filesystem succeeds" umount "$mnt"
sleep $((grace / 1000 + 2))
echo audit >"$RL_DBG/control"
diag "$(sb_line "$dev")"
t_ok "the unmounted frozen superblock shows as frozen" [ "$(sb_field "$dev" state)" = frozen ]
t_ok "it is not flagged as a leak" bash -c "! grep -q '^superblock .*dev=$dev ' $RL_DBG/leaks"
t_ok "mount it again (the same superblock)" mount "$loopdev" "$mnt"
t_ok "fsfreeze -u" fsfreeze -u "$mnt"
t_ok "the thaw's release is recorded as a locked release, not a final one" \
	grep -qE "event=locked_release .*fstype=ext4" "$RL_DBG/events"
t_ok "umount" umount "$mnt"
t_ok "it shuts down" wait_for 10 bash -c "grep 'dev=$dev ' $RL_DBG/superblocks | grep -qE 'state=(shutdown|freed)'"
t_ok "nothing flagged" no_leaks
losetup -d "$loopdev"
rm -f "$img"
rmdir "$mnt"
t_ok "rmmod refledger" rl_unload
t_done
