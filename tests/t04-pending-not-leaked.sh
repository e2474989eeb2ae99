#!/bin/bash
# Slow unmounts are not leaks.  A lazy unmount (umount -l) with a file still
# open leaves a struct mount holding the superblock: it is shown as pending,
# past the grace period, and never flagged; closing the file lets it shut
# down.  This is the UMOUNT_WAIT case: umount(2) returned, the superblock is
# still held by a file reference that is not a leak.
. "$(dirname "$0")/lib.sh"

t_ok "insmod succeeds" rl_load
t_ok "grace period set to 1000 ms" bash -c "echo grace_ms=1000 > $RL_DBG/control"
mnt=$(mktemp -d)
mount -t tmpfs none $mnt
dev=$(mountpoint -d $mnt)
echo data >$mnt/file
exec 3<$mnt/file
t_ok "lazy unmount with a file open succeeds" umount -l $mnt
diag "$(sb_line "$dev")"
t_ok "superblock is pending right after the lazy unmount" test "$(sb_field "$dev" state)" = pending
sleep 2.5
diag "$(sb_line "$dev")"
t_ok "still pending past the grace period" test "$(sb_field "$dev" state)" = pending
t_ok "its age is shown (state_ms >= 2000)" test "$(sb_field "$dev" state_ms)" -ge 2000
t_ok "not flagged while the file is open" no_leaks
exec 3<&-
t_ok "closing the file shuts it down" \
	wait_for 5 bash -c "sb_field $dev state | grep -qE 'shutdown|freed'"
diag "$(sb_line "$dev")"
sleep 1.5
t_ok "never flagged" no_leaks
t_ok "events show its shutdown" grep -q "event=shutdown .*fstype=tmpfs" "$RL_DBG/events"
t_ok "rmmod succeeds" rl_unload
t_done
