#!/bin/bash
# Every way a struct mount is made is recorded once, with its kind, on any
# kernel: mount(2), a bind mount (a clone) and the new mount API's
# fsmount(2).  On 6.12 mounts come through vfs_create_mount; since 6.18
# every new mount passes through setup_mnt, which a clone reaches from
# clone_mnt, whose own probe records it: counted once, not twice.
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d)
mkdir -p "$work/a" "$work/b" "$work/c"
t_ok "insmod succeeds" rl_load
diag "$(grep -E 'role=sb_(mount|clone) ' "$RL_DBG/probes")"

# events_of SB KIND: how many events of KIND superblock SB has.
events_of() { grep -c "event=$2 sb=$1 " "$RL_DBG/events"; }
# sb_of_mount DIR: the sb= id of the newest superblock mounted on DIR.
sb_of_mount() { sed -n 's/^sb=\([0-9a-f.]*\) .*/\1/p' <<<"$(sb_line "$(mountpoint -d "$1")")"; }

t_ok "mount(2) of a tmpfs" mount -t tmpfs rl-kinds "$work/a"
sb=$(sb_of_mount "$work/a")
diag "$(grep "sb=$sb " "$RL_DBG/events")"
t_ok "one mount event for it" test "$(events_of "$sb" mount)" = 1
t_ok "no clone event for it" test "$(events_of "$sb" clone)" = 0

t_ok "bind mount of it" mount --bind "$work/a" "$work/b"
diag "$(grep "sb=$sb " "$RL_DBG/events")"
t_ok "the bind mount is one clone event" test "$(events_of "$sb" clone)" = 1
t_ok "and no second mount event" test "$(events_of "$sb" mount)" = 1
t_ok "superblocks counts two mounts, two s_active" \
	bash -c "grep '^sb=$sb ' $RL_DBG/superblocks | grep -q ' s_active=2 mounts=2 '"

# fsopen(2), fsconfig(2) and fsmount(2), then move_mount(2) onto $work/c.
# The caller is the system call's body, or its wrapper where the compiler
# inlined the body (clang on 6.12).
fsmount_tmpfs() {
	python3 - "$1" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *args):
    r = libc.syscall(nr, *args)
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r
FSOPEN, FSCONFIG, FSMOUNT, MOVE_MOUNT = 430, 431, 432, 429
FSCONFIG_CMD_CREATE, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 6, 4, -100
fs = sc(FSOPEN, b"tmpfs", 0)
sc(FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0)
mfd = sc(FSMOUNT, fs, 0, 0)
sc(MOVE_MOUNT, mfd, b"", AT_FDCWD, sys.argv[1].encode(), MOVE_MOUNT_F_EMPTY_PATH)
PY
}
t_ok "fsmount(2) of a tmpfs, moved onto a directory" fsmount_tmpfs "$work/c"
sb2=$(sb_of_mount "$work/c")
diag "$(grep "sb=$sb2 " "$RL_DBG/events")"
t_ok "one mount event for it, from fsmount(2)" \
	bash -c "[ \"\$(grep -c 'event=mount sb=$sb2 ' $RL_DBG/events)\" = 1 ] && grep -qE 'event=mount sb=$sb2 .*caller=__(do|x64)_sys_fsmount\+' $RL_DBG/events"
t_ok "and no clone event" test "$(events_of "$sb2" clone)" = 0

t_ok "all three unmount" umount "$work/c" "$work/b" "$work/a"
sleep 0.5
t_ok "both superblocks shut down" \
	bash -c "grep -q 'event=shutdown sb=$sb ' $RL_DBG/events && grep -q 'event=shutdown sb=$sb2 ' $RL_DBG/events"
# The last reference goes by deactivate_super, which hands it on to
# deactivate_locked_super: one release event with s_active=1, then the
# shutdown; the handing on is not an event of its own (t15 sees a thaw's).
diag "$(grep "sb=$sb " "$RL_DBG/events")"
t_ok "the last release is a release event with s_active=1" \
	grep -qE "event=release sb=$sb .*s_active=1 " "$RL_DBG/events"
t_ok "and not also a final_release event" test "$(events_of "$sb" final_release)" = 0
t_ok "nothing flagged" no_leaks
t_ok "rmmod succeeds" rl_unload
rm -rf "$work"
t_done
