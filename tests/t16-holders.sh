#!/bin/bash
# The `holders` file names who keeps a superblock, and balances s_active:
# a shell's working directory, an open file, a mapping, a vfork child that
# inherited an fd to the mount (illumos 7336's shape), another mount
# namespace, a namespace kept only by a bind-mounted nsfs file, a loop
# device backed by a file on it, a swap file, a detached open_tree(2)
# clone held by an fd, a lazy unmount with an open file, an fsopen(2)
# context and a file in flight in a unix socket (SCM_RIGHTS) that no task
# has open.  Each case names the holder with unexplained=0, and a control
# (nothing holding) shows no false holder.  The leakyfs fixture, whose
# reference leaks as OpenZFS #18309's did, shows no holder and
# unexplained=1.
. "$(dirname "$0")/lib.sh"

H=$RL_DBG/holders
work=$(mktemp -d)
mkdir -p "$work/m" "$work/n"
pids=()
cleanup() {
	kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT

# holders_of TARGET: what the file shows for TARGET (a path, dev= or sb=).
holders_of() { echo "$1" >"$H" && cat "$H"; }
# For checks that run it in `bash -c`.
export -f holders_of
export H
# balance: the balance line of the last read.
balance() { grep '^# balance ' <<<"$out"; }
# has REGEX: the last read has a line matching REGEX.
has() { grep -qE "$1" <<<"$out"; }
# holder_lines: how many holder lines the last read has.
holder_lines() { grep -c '^holder ' <<<"$out"; }
# bg COMMAND...: starts COMMAND in the background and waits until it is
# running it (not the shell that forks it).
bg() {
	"$@" &
	pids+=($!)
	# Every COMMAND here ends in exec'ing sleep: until it has, the process
	# is still bash (or unshare), and has not yet set up what it holds.
	wait_for 30 grep -qx sleep "/proc/$!/comm"
}
# bg_py SCRIPT: runs a Python script in the background; the script calls
# ready() once it holds what it should, and this waits for that (Python
# starts slowly on the debug kernel).
bg_py() {
	rm -f "$work/ready"
	"$RL_PY" -c "
def ready():
    open('$work/ready', 'w').close()
$1" &
	pids+=($!)
	wait_for 30 test -e "$work/ready"
}
show() { sed 's/^/# /' <<<"$out"; }
# umount_errno DIR: one umount2(2) of DIR; prints OK or the errno's name
# (umount(8) prints a message, not the errno).
umount_errno() {
	"$RL_PY" -c "
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.umount2(sys.argv[1].encode(), 0)
print('OK' if r == 0 else errno.errorcode[ctypes.get_errno()])" "$1"
}

t_ok "insmod succeeds" rl_load
t_ok "holders is root-only, read-write (0600)" test "$(stat -c %a "$H")" = 600
t_ok "before a write: says how to choose a superblock" grep -q '^# no superblock chosen' "$H"
t_ok "a bad write is refused with EINVAL: junk" test "$(write_errno "$H" 'junk\n')" = EINVAL
t_ok "a bad write is refused with EINVAL: dev=x" test "$(write_errno "$H" 'dev=x:1\n')" = EINVAL
t_ok "a bad write is refused with EINVAL: sb= not 16 hex digits" test "$(write_errno "$H" 'sb=12g4\n')" = EINVAL
t_ok "a path that does not exist is refused with ENOENT" \
	test "$(write_errno "$H" "$work/nonexistent\n")" = ENOENT
t_ok "and the target did not change" grep -q '^# no superblock chosen' "$H"

t_ok "mount a tmpfs" mount -t tmpfs rl-holders "$work/m"
echo data >"$work/m/f"
dev=$(mountpoint -d "$work/m")
out=$(holders_of "$work/m")
show
t_ok "control: its one mount, no holder, unexplained=0" \
	bash -c "grep -q '^# balance s_active=1 mounts=1 detached=0 fs_contexts=0 frozen=0 unexplained=0\$' <<<'$out' && ! grep -q '^holder ' <<<'$out'"
t_ok "the mount line: in this namespace, with its mountpoint" \
	has "^mount mnt_id=[0-9]+ mntns=$(stat -Lc %i /proc/self/ns/mnt) where=namespace refs=[0-9]+ path=$work/m\$"
t_ok "the target line names it (fstype, dev)" has "^# target sb=[0-9a-f]{16}\\.[0-9]+ fstype=tmpfs s_id=tmpfs dev=$dev "
t_ok "dev= names the same superblock" bash -c "echo dev=$dev >$H && grep -q '^# target .* dev=$dev ' $H"
sb=$(sed -n 's/^# target sb=\([0-9a-f.]*\) .*/\1/p' <<<"$out")
t_ok "sb= names the same superblock" bash -c "echo sb=$sb >$H && grep -q '^# target sb=$sb fstype=tmpfs' $H"
t_ok "the id is the one superblocks prints" grep -q "^sb=$sb fstype=tmpfs .* dev=$dev " "$RL_DBG/superblocks"

# Ids are unique: superblocks that had the same address one after the
# other (as tmpfs ones mounted in turn often do) get different ids.
ids=()
for i in 1 2 3; do
	mount -t tmpfs rl-ids "$work/n"
	ids+=("$(sb_field "$(mountpoint -d "$work/n")" sb)")
	umount "$work/n"
done
diag "ids: ${ids[*]}"
t_ok "three tmpfs mounted in turn have three different ids" \
	test "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 3
t_ok "the id of one that is gone names nothing now" \
	bash -c "echo sb=${ids[0]} >$H && grep -q '^# not found' $H"

# A shell whose working directory is in it.
bg bash -c "cd '$work/m' && exec sleep 1000"
p=${pids[-1]}
out=$(holders_of "$work/m")
show
t_ok "a task's cwd: named with pid, comm and its mount namespace" \
	has "^holder kind=cwd pid=$p comm=sleep mntns=[0-9]+ path=$work/m\$"
kill "$p"
wait "$p" 2>/dev/null

# An open file.
bg bash -c "exec sleep 1000 3<'$work/m/f'"
p=${pids[-1]}
out=$(holders_of "$work/m")
t_ok "an open file: named with its fd and path" has "^holder kind=fd pid=$p comm=sleep mntns=[0-9]+ fd=3 path=$work/m/f\$"
kill "$p"
wait "$p" 2>/dev/null

# A mapping of a file on it (the file closed after mmap).
bg_py "
import mmap, os, time
fd = os.open('$work/m/f', os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
os.close(fd)
ready()
time.sleep(1000)"
p=${pids[-1]}
out=$(holders_of "$work/m")
t_ok "a mapping: named, with how many mappings" has "^holder kind=mmap pid=$p comm=python3[^ ]* mntns=[0-9]+ mappings=1 path=$work/m/f\$"
kill "$p"
wait "$p" 2>/dev/null

# illumos 7336's shape: the parent opens the mount's directory, starts a
# child with vfork (posix_spawn), which inherits the fd, closes its own
# copy and waits.  Only the child holds it.
bg_py "
import os
fd = os.open('$work/m', os.O_RDONLY | os.O_DIRECTORY)
os.set_inheritable(fd, True)
os.dup2(fd, 7)
os.close(fd)
pid = os.posix_spawn('/bin/sleep', ['sleep', '1000'], os.environ)
os.close(7)
ready()
os.waitpid(pid, 0)"
p=${pids[-1]}
child=$(pgrep -P "$p" sleep)
out=$(holders_of "$work/m")
show
t_ok "a vfork child holding the mount's directory: the child is named" \
	has "^holder kind=fd pid=$child comm=sleep mntns=[0-9]+ fd=7 path=$work/m\$"
t_ok "and not the waiting parent" bash -c "! grep -q 'pid=$p ' <<<'$out'"
kill "$child" "$p"
wait "$p" 2>/dev/null

t_ok "control again: no holder once they are gone" \
	test "$(holders_of "$work/m" | grep -c '^holder ')" = 0

# A refused unmount: who held it then is kept, even once they are gone.
bg bash -c "cd '$work/m' && exec sleep 1000"
p=${pids[-1]}
t_ok "umount is refused while a shell's cwd is inside" bash -c "! umount '$work/m' 2>/dev/null"
t_ok "the holders at the refusal are captured" \
	wait_for 10 grep -q "^  at_refusal holder kind=cwd pid=$p comm=sleep " "$RL_DBG/leaks"
kill "$p"
wait "$p" 2>/dev/null
out=$(cat "$RL_DBG/leaks")
show
t_ok "after the holder is gone, leaks still names it" \
	has "^busy sb=$sb .* verdict=real_holder:mounted_and_in_use held_at_refusal_by=sleep\\[$p\\]:cwd\$"
t_ok "with the balance at the refusal" has '^  at_refusal t=[0-9.]+ s_active=1 mounts=1 unexplained=0 holders=2$'

# Another mount namespace keeps a copy of the mount after it is unmounted
# here.
bg unshare -m --propagation private sleep 1000
p=${pids[-1]}
ns=$(stat -Lc %i /proc/$p/ns/mnt)
sleep 0.5
echo "dev=$dev" >"$H"
t_ok "umount here succeeds" umount "$work/m"
out=$(cat "$H")
show
t_ok "the mount kept by the other namespace is named, with its namespace" \
	has "^mount mnt_id=[0-9]+ mntns=$ns where=namespace refs=[0-9]+ path=$work/m\$"
t_ok "balance: s_active=1 mounts=1 unexplained=0" has '^# balance s_active=1 mounts=1 .* unexplained=0$'

# The namespace kept only by a bind mount of its nsfs file: the task goes.
mkdir -p /run/rl-t16 && touch /run/rl-t16/mnt
t_ok "bind-mount the namespace's nsfs file" mount --bind /proc/$p/ns/mnt /run/rl-t16/mnt
kill "$p"
wait "$p" 2>/dev/null
out=$(cat "$H")
show
t_ok "the mount is in a namespace without tasks" \
	has "^mount mnt_id=[0-9]+ mntns=$ns where=namespace_without_tasks "
t_ok "the nsfs bind mount that keeps it is named" \
	has "^holder kind=nsfs_mount mntns=[0-9]+ keeps_mntns=$ns path=/run/rl-t16/mnt\$"
t_ok "unexplained=0" has ' unexplained=0$'
t_ok "the namespace goes with its bind mount" umount /run/rl-t16/mnt
t_ok "and then so does the superblock" \
	wait_for 5 bash -c "grep -q '^# not found' <(echo dev=$dev >$H; cat $H)"

# A lazy unmount with a file open: the mount is detached, the fd named.
t_ok "mount a tmpfs again" mount -t tmpfs rl-holders "$work/m"
echo data >"$work/m/f"
dev=$(mountpoint -d "$work/m")
bg bash -c "exec sleep 1000 3<'$work/m/f'"
p=${pids[-1]}
echo "dev=$dev" >"$H"
t_ok "umount -l succeeds" umount -l "$work/m"
out=$(cat "$H")
show
t_ok "the detached mount is shown" has '^mount mnt_id=[0-9]+ mntns=0 where=detached '
t_ok "the fd keeping it is named" has "^holder kind=fd pid=$p comm=sleep .* fd=3 path=/f\$"
t_ok "balance: detached=1 unexplained=0" has '^# balance s_active=1 mounts=1 detached=1 .* unexplained=0$'
kill "$p"
wait "$p" 2>/dev/null

# A detached open_tree(2) clone held by an fd.
t_ok "mount a tmpfs again" mount -t tmpfs rl-holders "$work/m"
dev=$(mountpoint -d "$work/m")
bg_py "
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
OPEN_TREE_CLONE, AT_FDCWD = 1, -100
fd = libc.syscall(428, AT_FDCWD, b'$work/m', OPEN_TREE_CLONE)
assert fd >= 0, ctypes.get_errno()
ready()
time.sleep(1000)"
p=${pids[-1]}
out=$(holders_of "dev=$dev")
show
t_ok "the clone is a mount of its own, in an anonymous namespace" has '^mount mnt_id=[0-9]+ mntns=[0-9]+ where=anonymous '
t_ok "and the fd that holds it is named" has "^holder kind=fd pid=$p comm=python3[^ ]* .* path=/\$"
t_ok "balance: mounts=2 unexplained=0" has '^# balance s_active=2 mounts=2 .* unexplained=0$'
kill "$p"
wait "$p" 2>/dev/null

# A loop device backed by a file on it.
t_ok "a loop device on a file in it" bash -c "truncate -s 4M '$work/m/img' && losetup -f --show '$work/m/img' >$work/loopdev"
loopdev=$(cat "$work/loopdev")
out=$(holders_of "dev=$dev")
show
t_ok "the loop device is named, with its backing file" \
	has "^holder kind=loop loop=${loopdev#/dev/loop} path=$work/m/img\$"
t_ok "detach it" losetup -d "$loopdev"
t_ok "the loop holder goes" wait_for 5 bash -c "! grep -q '^holder kind=loop' $H"
t_ok "umount succeeds" umount "$work/m"

# A file in flight: a child sends an fd of a file on the tmpfs to its
# parent over a socketpair (SCM_RIGHTS) and exits; the parent keeps the
# receiving socket as fd 9 and never receives.  No task has the file open,
# yet the file keeps the mount.  The control first: a message without fds
# queued the same way names no holder.
t_ok "mount a tmpfs again" mount -t tmpfs rl-holders "$work/m"
echo data >"$work/m/f"
dev=$(mountpoint -d "$work/m")
bg_py "
import socket, time
a, b = socket.socketpair()
a.send(b'no fds')
ready()
time.sleep(1000)"
p=${pids[-1]}
out=$(holders_of "dev=$dev")
t_ok "control: a message without fds queued in a unix socket: no holder" test "$(holder_lines)" = 0
kill "$p"
wait "$p" 2>/dev/null
bg_py "
import os, socket, time
a, b = socket.socketpair()
os.dup2(b.fileno(), 9)
b.close()
if os.fork() == 0:
    fd = os.open('$work/m/f', os.O_RDONLY)
    socket.send_fds(a, [b'x'], [fd])
    os._exit(0)
os.wait()
a.close()
ready()
time.sleep(1000)"
p=${pids[-1]}
t_ok "umount is refused with EBUSY while the file is in flight" test "$(umount_errno "$work/m")" = EBUSY
out=$(holders_of "dev=$dev")
show
t_ok "the file in flight: named with the receiving socket's task and fd" \
	has "^holder kind=scm_rights pid=$p comm=python3[^ ]* mntns=[0-9]+ fd=9 path=$work/m/f\$"
t_ok "and nothing else holds it" test "$(holder_lines)" = 1
t_ok "balance: s_active=1 mounts=1 unexplained=0" has '^# balance s_active=1 mounts=1 .* unexplained=0$'
t_ok "no socket was skipped as busy" has '^# holders=.* scm_busy=0 '
t_ok "the refusal's capture names it" \
	wait_for 10 grep -q "^  at_refusal holder kind=scm_rights pid=$p " "$RL_DBG/leaks"
kill "$p"
wait "$p" 2>/dev/null
t_ok "once the receiving socket is closed, umount succeeds" \
	wait_for 10 bash -c "umount '$work/m' 2>/dev/null"

# A swap file on an ext4 filesystem (tmpfs cannot hold swap files).
truncate -s 64M "$work/ext4.img"
mkfs.ext4 -q "$work/ext4.img"
if mount -o loop "$work/ext4.img" "$work/n" && dd if=/dev/zero of="$work/n/swap" bs=1M count=8 status=none &&
	chmod 600 "$work/n/swap" && mkswap -q "$work/n/swap" >/dev/null 2>&1 && swapon "$work/n/swap" 2>/dev/null; then
	out=$(holders_of "$work/n")
	show
	t_ok "a swap file: named, with its path" has "^holder kind=swap swap_type=[0-9]+ path=$work/n/swap\$"
	t_ok "swapoff" swapoff "$work/n/swap"
	t_ok "the swap holder goes" bash -c "! holders_of '$work/n' | grep -q '^holder kind=swap'"
else
	t_skip "a swap file: swapon failed on this kernel (no CONFIG_SWAP?)"
	t_skip "swapoff"
	t_skip "the swap holder goes"
fi
umount "$work/n" 2>/dev/null

# An fsopen(2) context that created a superblock and was never mounted.
bg_py "
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
fs = libc.syscall(430, b'tmpfs', 0)
assert fs >= 0
libc.syscall(431, fs, 1, b'source', b'rl-fsctx', 0)
assert libc.syscall(431, fs, 6, None, None, 0) == 0
ready()
time.sleep(1000)"
p=${pids[-1]}
# Created, never mounted: the newest tmpfs with no mounts, not yet flagged.
sbline=$(awk '/ fstype=tmpfs .* state=detached / {
	for (j = 1; j <= NF; j++) if (index($j, "first_seen=") == 1) { t = substr($j, 12) + 0; if (t >= best) { best = t; line = $0 } } }
	END { print line }' "$RL_DBG/superblocks")
sb=$(sed -n 's/^sb=\([0-9a-f.]*\) .*/\1/p' <<<"$sbline")
diag "$sbline"
out=$(holders_of "sb=$sb")
show
t_ok "an fs context: named with its task and fd" has "^holder kind=fs_context pid=$p comm=python3[^ ]* mntns=[0-9]+ fd=[0-9]+\$"
t_ok "balance: s_active=1 mounts=0 fs_contexts=1 unexplained=0" \
	has '^# balance s_active=1 mounts=0 detached=0 fs_contexts=1 frozen=0 unexplained=0$'
echo grace_ms=$((1000 * RL_SCALE)) >"$RL_DBG/control"
echo audit_ms=300 >"$RL_DBG/control"
t_ok "past the grace period it is held, not leaked" \
	wait_for 10 bash -c "grep -q '^sb=$sb .* state=held ' $RL_DBG/superblocks"
t_ok "and leaks does not flag it" bash -c "! grep -q '^superblock sb=$sb ' $RL_DBG/leaks"
kill "$p"
wait "$p" 2>/dev/null
t_ok "once the context is closed the superblock shuts down" \
	wait_for 10 bash -c "grep -q 'event=shutdown sb=$sb ' $RL_DBG/events"
echo grace_ms=5000 >"$RL_DBG/control"
echo audit_ms=1000 >"$RL_DBG/control"

# The #18309 pattern: a reference taken and never given back.
fixture=$RL_FIX/leakyfs/leakyfs.ko
ctl=/sys/kernel/debug/leakyfs/ctl
t_ok "insmod leakyfs" insmod "$fixture"
t_ok "mount a leakyfs dataset" mount -t leakyfs tank-t16 "$work/m"
dev=$(mountpoint -d "$work/m")
echo "teardown tank-t16" >"$ctl"
t_ok "its hold fails with EBUSY, keeping the reference" test "$(write_errno "$ctl" 'hold tank-t16\n')" = EBUSY
t_ok "umount succeeds" umount "$work/m"
out=$(holders_of "dev=$dev")
show
t_ok "no mount, no holder" bash -c "! grep -qE '^(mount|holder) ' <<<'$out'"
t_ok "balance: s_active=1 mounts=0 unexplained=1" \
	has '^# balance s_active=1 mounts=0 detached=0 fs_contexts=0 frozen=0 unexplained=1$'
echo grace_ms=$((1000 * RL_SCALE)) >"$RL_DBG/control"
t_ok "leaks flags it, with its balance under it" \
	wait_for 10 bash -c "grep -A40 '^superblock .* s_id=tank-t16 ' $RL_DBG/leaks | grep -q '^  balance s_active=1 mounts=0 detached=0 fs_contexts=0 frozen=0 unexplained=1\$'"
echo grace_ms=5000 >"$RL_DBG/control"
t_ok "repair: the missing release" bash -c "echo 'repair tank-t16' >$ctl"
t_ok "rmmod leakyfs" wait_for 5 rmmod leakyfs

t_ok "every part of the walk ran" bash -c "echo /tmp >$H; grep -q '^# holders=.* unavailable=-\$' $H"
t_ok "rmmod succeeds" rl_unload
t_ok "no kernel warnings" no_kernel_reports
rm -rf "$work" /run/rl-t16
t_done
