#!/bin/bash
# Real OpenZFS (2.3.2 built against the test kernel by scripts/zfs.sh, 2.4.4
# against the stock kernel by scripts/stock.sh zfs): refledger arms its ZFS
# probes when zfs.ko loads and disarms them before it unloads; pools and
# datasets come and go without false leaks; holds taken by `zfs userspace`
# and `zfs set userquota@` are recorded; an export made busy by a shell's cwd
# inside the pool is explained as a real holder, not a leak, and succeeds
# once the shell leaves.
. "$(dirname "$0")/lib.sh"

if ! zfs_setup; then
	t_skip "OpenZFS modules" "not built for this kernel (see the host log)"
	t_done
fi
trap zfs_teardown EXIT
zdir=$ZDIR
diag "OpenZFS $(modinfo -F version "$zdir/zfs.ko"), zpool $(zpool version 2>/dev/null | head -n1)"
zfs_load() { insmod "$zdir/spl.ko" && insmod "$zdir/zfs.ko"; }
zfs_unload() { rmmod zfs && rmmod spl; }
vdev=/tmp/zv0
pool_mnt=/tmp/tank

t_ok "insmod refledger before zfs" rl_load
t_ok "ZFS probes wait for zfs.ko" \
	grep -q 'symbol=zfsvfs_hold role=zfs_hold .*state=waiting .*reason="armed when zfs.ko loads"' "$RL_DBG/probes"
t_ok "insmod spl and zfs" zfs_load
for s in zfsvfs_hold zfs_vfs_ref zfs_vfs_rele spa_export; do
	t_ok "$s is armed once zfs.ko is live" test "$(probe_field $s state)" = armed
done

echo grace_ms=2000 >"$RL_DBG/control"
truncate -s 256M $vdev
t_ok "zpool create on a file vdev" zpool create -f -m $pool_mnt tank $vdev
t_ok "zfs create tank/a" zfs create tank/a
t_ok "zfs snapshot" zfs snapshot tank/a@s1
t_ok "zfs userspace" bash -c "zfs userspace tank/a >/dev/null"
t_ok "zfs set userquota@root" zfs set userquota@root=10M tank/a
cat "$RL_DBG/zfs" | sed 's/^/# /'
# A successful hold keeps its reference for the caller, which gives it back
# with zfsvfs_rele -> zfs_vfs_rele -> deactivate_super.
t_ok "holds are recorded by dataset and result, keeping one reference" \
	grep -qE '^hold t=.* dataset=tank/a result=0 kept_refs=1 sb=[0-9a-f]+\.[0-9]+ .*caller=zfs_ioc_userspace_many' "$RL_DBG/zfs"
t_ok "the userquota hold goes through zfs_prop_set_special" \
	grep -qE '^hold t=.* dataset=tank/a result=0 .*caller=zfs_prop_set_special' "$RL_DBG/zfs"
t_ok "every hold's reference came back through zfs_vfs_rele" \
	bash -c "h=\$(sed -n 's/.* holds_ok=\([0-9]*\) .*/\1/p' $RL_DBG/zfs); r=\$(sed -n 's/.* vfs_reles=\([0-9]*\) .*/\1/p' $RL_DBG/zfs); [ \"\$h\" -ge 1 ] && [ \"\$h\" = \"\$r\" ]"
# zfsvfs_rele is inlined and zfs_vfs_rele tail-calls deactivate_super, so
# the release's call site is the ioctl handler itself.
t_ok "the releases are in events, from the ioctl handler" \
	grep -q 'event=release .*fstype=zfs .*caller=zfs_ioc_userspace_many' "$RL_DBG/events"
t_ok "the hold names the dataset's superblock" \
	bash -c "grep '^hold .*dataset=tank/a' $RL_DBG/zfs | grep -qv 'sb=- '"
t_ok "zfsvfs_hold was entered" test "$(probe_field zfsvfs_hold hits)" -ge 2
grep 'fstype=zfs ' "$RL_DBG/superblocks" | sed 's/^/# /'
t_ok "superblocks lists the ZFS superblocks live" \
	test "$(grep -c 'fstype=zfs .*state=live' "$RL_DBG/superblocks")" -ge 2

# An export made busy by a real holder: a shell whose cwd is in the pool.
(cd $pool_mnt/a && exec sleep 120) &
holder=$!
sleep 0.5
t_ok "zpool export fails while a shell's cwd is inside" bash -c "! zpool export tank 2>/tmp/zerr"
diag "$(cat /tmp/zerr)"
grep -E 'fstype=zfs' "$RL_DBG/events" | tail -n 5 | sed 's/^/# /' 
sed -n '/^busy /p' "$RL_DBG/leaks" | sed 's/^/# /'
t_ok "leaks explains the busy export as a real holder" \
	grep -qE '^busy sb=.* fstype=zfs .* state=live .* verdict=real_holder:mounted_and_in_use' "$RL_DBG/leaks"
t_ok "the busy export names the shell that holds it" \
	grep -qE "^busy sb=.* fstype=zfs .* verdict=real_holder:mounted_and_in_use held_by=sleep\[$holder\]:cwd( |\$)" "$RL_DBG/leaks"
t_ok "with its holder line and a balance that adds up" \
	bash -c "grep -q '^  holder kind=cwd pid=$holder comm=sleep .* path=$pool_mnt/a\$' $RL_DBG/leaks && grep -q '^  balance .* unexplained=0\$' $RL_DBG/leaks"
t_ok "and who held it at the refusal" \
	grep -q "^  at_refusal holder kind=cwd pid=$holder comm=sleep " "$RL_DBG/leaks"
t_ok "events record the refused unmount" grep -q 'event=umount_busy .*fstype=zfs' "$RL_DBG/events"
t_ok "nothing is flagged as leaked" bash -c "! grep -qE '^(superblock|zfs_hold_leak) ' $RL_DBG/leaks"
kill $holder
wait $holder 2>/dev/null
t_ok "zpool export succeeds once the shell left" zpool export tank
sleep 3
t_ok "the ZFS superblocks shut down" \
	bash -c "! grep -q 'fstype=zfs .*state=\(live\|pending\|detached\|leaked\)' $RL_DBG/superblocks"
t_ok "events show ZFS shutdowns" grep -q 'event=shutdown .*fstype=zfs' "$RL_DBG/events"
t_ok "zpool import" zpool import -d /tmp tank
t_ok "imported datasets are live again" grep -q 'fstype=zfs .*state=live' "$RL_DBG/superblocks"
t_ok "zfs destroy of a snapshot and a dataset" bash -c "zfs destroy tank/a@s1 && zfs destroy tank/a"
t_ok "zpool export again" zpool export tank
sleep 3
t_ok "no false leak over the whole ZFS run" \
	bash -c "! grep -qE '^(superblock|zfs_hold_leak|bdev_open_leak|module_underflow) ' $RL_DBG/leaks"

t_ok "zfs.ko unloads while refledger stays" zfs_unload
t_ok "its probes are disarmed and waiting again" \
	grep -q 'symbol=zfsvfs_hold role=zfs_hold .*state=waiting' "$RL_DBG/probes"
t_ok "rmmod refledger" rl_unload

t_ok "zfs loaded first, then refledger" bash -c "insmod $zdir/spl.ko && insmod $zdir/zfs.ko && insmod $RL_KO"
t_ok "zfsvfs_hold is armed at once" test "$(probe_field zfsvfs_hold state)" = armed
t_ok "rmmod refledger, then zfs" bash -c "rmmod refledger && rmmod zfs && rmmod spl"
rm -f $vdev
t_ok "no kernel warning (OpenZFS's own lockdep reports aside)" no_kernel_reports
t_done
