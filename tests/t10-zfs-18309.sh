#!/bin/bash
# OpenZFS #18309 with real OpenZFS.  The zfstorn fixture makes one
# zfsvfs_hold() find its dataset torn down (z_unmounted) after getzfsvfs()
# took an s_active reference; everything else is OpenZFS's own code.
#
# 2.3.x returns EBUSY keeping the reference.  refledger must record the hold
# with kept_refs=1 and list it at once as zfs_hold_leak; once the dataset is
# unmounted its superblock, left with s_active=1 and no mounts, must be
# flagged, and the refused `zpool export` explained as a leaked reference.
# When the fixture drops the leaked reference the superblock must shut down,
# the leak be kept as resolved, and the pool export.
#
# 2.4.x gives the reference back: refledger must record kept_refs=0 and
# flag nothing, the dataset must unmount for good and the pool export.
. "$(dirname "$0")/lib.sh"

fixture=$RL_FIX/zfstorn/zfstorn.ko
ctl=/sys/kernel/debug/zfstorn/ctl
vdev=/tmp/zt18309
pool_mnt=/tmp/tank18309
grace=$((2000 * RL_SCALE))
audit=500

if ! zfs_setup; then
	t_skip "OpenZFS modules" "not built for this kernel (see the host log)"
	t_done
fi
if [ ! -e "$fixture" ]; then
	zfs_teardown
	t_skip "the zfstorn fixture" "zfstorn.ko was not built (it needs ZFS_SRC, the configured OpenZFS tree)"
	t_done
fi
zdir=$ZDIR
ver=$(modinfo -F version "$zdir/zfs.ko")
case $ver in
2.3.*) fixed=0 ;;
2.4.*) fixed=1 ;;
*)
	t_skip "OpenZFS $ver" "the expected outcome is known for 2.3.x (the leak) and 2.4.x (fixed)"
	t_done
	;;
esac
diag "OpenZFS $ver: $([ $fixed = 1 ] && echo 'fixed, the hold must give its reference back' || echo 'has #18309, the hold must leak')"

# Whatever happened, leave no pool, leak, module or mount behind for the next
# test.
cleanup() {
	{
		[ -e $ctl ] && echo repair >$ctl
		zpool export tank
		rmmod zfstorn
		rmmod zfs && rmmod spl
		rm -f $vdev
		zfs_teardown
	} >/dev/null 2>&1
}
trap cleanup EXIT

# sb_of FIELD: FIELD of the `superblocks` line of tank/a's superblock
# (reading `superblocks` audits first: s_active and mounts are current).
sb_of() {
	awk -v s="sb=$sbid" -v f="$1" '
		$1 == s { for (i = 2; i <= NF; i++) if (index($i, f "=") == 1) { print substr($i, length(f) + 2); exit } }
	' "$RL_DBG/superblocks"
}
# sb_is STATE S_ACTIVE MOUNTS: tank/a's superblock is in that state, with
# those counts.
sb_is() { [ "$(sb_of state) $(sb_of s_active) $(sb_of mounts)" = "$1 $2 $3" ]; }
# shut_down: tank/a's superblock went through generic_shutdown_super.
shut_down() { grep -q "event=shutdown sb=$sbid " "$RL_DBG/events"; }
# unmounted_held: no mounts are left, but the leaked reference holds s_active.
unmounted_held() { [ "$(sb_of mounts) $(sb_of s_active)" = "0 1" ] && ! shut_down; }
# leak_line: tank/a's superblock entry in `leaks`.
leak_line() { grep "^superblock sb=$sbid " "$RL_DBG/leaks"; }
# leak_evidence PATTERN: a line of that entry's evidence matches PATTERN.
leak_evidence() { sed -n "/^superblock sb=$sbid /,/^[^ ]/p" "$RL_DBG/leaks" | grep -qE "$1"; }

t_ok "insmod refledger" rl_load
echo "grace_ms=$grace" >"$RL_DBG/control"
echo "audit_ms=$audit" >"$RL_DBG/control"
t_ok "zfstorn refuses to load before zfs.ko, saying why" \
	bash -c "! insmod $fixture 2>/dev/null && dmesg | grep -q 'zfstorn: cannot probe OpenZFS (error -2): load zfs.ko first'"
t_ok "insmod spl and zfs" bash -c "insmod $zdir/spl.ko && insmod $zdir/zfs.ko"
t_ok "insmod zfstorn after zfs.ko" insmod "$fixture"
truncate -s 256M $vdev
t_ok "zpool create on a file vdev" zpool create -f -m $pool_mnt tank $vdev
t_ok "zfs create tank/a, mounted" \
	bash -c "zfs create tank/a && [ \"\$(zfs get -H -o value mounted tank/a)\" = yes ]"

# A hold before arming: it succeeds, and names tank/a's superblock.
t_ok "zfs userspace tank/a succeeds before arming" bash -c "zfs userspace tank/a >/dev/null"
sbid=$(grep -E '^hold .* dataset=tank/a result=0 ' "$RL_DBG/zfs" | tail -n1 | sed -n 's/.* sb=\([0-9a-f.]*\) .*/\1/p')
t_ok "refledger names tank/a's superblock in the hold" test -n "$sbid"
diag "tank/a: $(grep "^sb=$sbid " "$RL_DBG/superblocks")"
# Each mount holds one s_active reference.  Where zfs runs in the stock
# kernel's build root (lib.sh), the dataset's mount there propagates to
# this guest's /tmp: two mounts.
s0=$(sb_of s_active)
m0=$(sb_of mounts)
t_ok "tank/a's superblock is live, its s_active (${s0:-?}) all its mounts' (${m0:-?})" \
	bash -c "[ -n '$m0' ] && [ '$m0' -ge 1 ] && [ '$s0' = '$m0' ] && [ '$(sb_of state)' = live ]"

# The hold zfstorn tears down: `zfs userspace` reaches zfsvfs_hold() through
# ZFS_IOC_USERSPACE_MANY.
t_ok "arm zfstorn for tank/a" bash -c "echo 'arm tank/a' >$ctl"
zfs userspace tank/a >/tmp/zt18309.out 2>&1
rc=$?
diag "zfs userspace: exit $rc: $(tr '\n' ' ' </tmp/zt18309.out)"
t_ok "zfs userspace tank/a fails: dataset is busy (zfsvfs_hold's EBUSY)" \
	bash -c "[ $rc != 0 ] && grep -q 'dataset is busy' /tmp/zt18309.out"
sed 's/^/# zfstorn: /' $ctl
if [ $fixed = 1 ]; then
	t_ok "zfstorn saw OpenZFS give the reference back (zfs_vfs_rele)" \
		grep -qE '^state=released dataset=tank/a .* reles=1 missed=0$' $ctl
else
	t_ok "zfstorn saw the hold end without giving the reference back" \
		grep -qE '^state=leaked dataset=tank/a .* reles=0 missed=0$' $ctl
fi
hold=$(grep -E '^hold .* dataset=tank/a result=16 ' "$RL_DBG/zfs" | tail -n1)
diag "$hold"
t_ok "refledger records the hold with result=16 (EBUSY) on tank/a's superblock" \
	grep -qE " result=16 kept_refs=[0-9-]+ sb=$sbid " <<<"$hold"
t_ok "the hold's caller is zfs_ioc_userspace_many, in comm=zfs" \
	grep -q ' comm=zfs caller=zfs_ioc_userspace_many+' <<<"$hold"
t_ok "holds_ebusy counts it" grep -qE '^# holds_ok=[0-9]+ holds_ebusy=1 ' "$RL_DBG/zfs"
t_ok "zfs userspace tank/a succeeds again (only the armed hold was torn)" \
	bash -c "zfs userspace tank/a >/dev/null"

if [ $fixed = 1 ]; then
	t_ok "kept_refs=0: the EBUSY hold gave its reference back" \
		grep -q ' result=16 kept_refs=0 ' <<<"$hold"
	t_ok "s_active is back to $s0 with the $m0 mounts" sb_is live "$s0" "$m0"
	t_ok "no zfs_hold_leak and no superblock in leaks" \
		bash -c "! grep -qE '^(zfs_hold_leak|superblock) ' $RL_DBG/leaks"
	t_ok "zfs umount tank/a" zfs umount tank/a
	t_ok "tank/a's superblock shuts down at once" wait_for 3 shut_down
	sleep $(((grace + audit) / 1000 + 1))
	t_ok "nothing flagged after the grace period either" \
		bash -c "! grep -qE '^(zfs_hold_leak|superblock|busy) ' $RL_DBG/leaks"
	t_ok "zpool export succeeds" zpool export tank
else
	t_ok "kept_refs=1: the EBUSY hold kept its reference" \
		grep -q ' result=16 kept_refs=1 ' <<<"$hold"
	sed -n '/^zfs_hold_leak /,/^[^ ]/p' "$RL_DBG/leaks" | sed 's/^/# /'
	t_ok "leaks lists it at once as zfs_hold_leak for tank/a" \
		grep -qE "^zfs_hold_leak t=.* dataset=tank/a result=16 kept_refs=1 sb=$sbid .* comm=zfs caller=zfs_ioc_userspace_many\+" "$RL_DBG/leaks"
	t_ok "with the caller's stack, through the ZFS ioctl" \
		bash -c "grep -A6 '^zfs_hold_leak .*dataset=tank/a' $RL_DBG/leaks | grep -q '^    at zfsdev_ioctl_common+'"
	t_ok "tank/a's superblock has one s_active more than its mount explains" \
		sb_is live $((s0 + 1)) "$m0"
	# Flagged by the hold while still mounted: its stall counts from the
	# flag, not from boot.
	line=$(leak_line)
	diag "$line"
	stalled=$(sed -n 's/.* stalled_ms=\([0-9]*\) .*/\1/p' <<<"$line")
	flagged=$(sed -n 's/.* flagged=\([0-9.]*\) .*/\1/p' <<<"$line")
	t_ok "leaks lists it, still mounted, stalled since it was flagged (${stalled:-?} ms)" \
		awk -v s="${stalled:--1}" -v f="${flagged:-0}" '{ exit !(s >= 0 && s <= ($1 - f) * 1000 + 100) }' /proc/uptime
	t_ok "zfs umount tank/a succeeds (the leak is invisible to userspace)" zfs umount tank/a
	start=$(ms_now)
	diag "$(grep "^sb=$sbid " "$RL_DBG/superblocks")"
	t_ok "after umount: no mounts, s_active=1, not shut down" unmounted_held
	t_ok "superblocks shows it leaked within grace + one audit period (+1 s slack)" \
		wait_for $(((grace + audit) / 1000 + 2)) sb_is leaked 1 0
	diag "flagged after about $(($(ms_now) - start)) ms (grace ${grace} ms, audit ${audit} ms)"
	leak_line | sed 's/^/# /'
	t_ok "leaks: fstype=zfs, state=leaked, s_active=1, mounts=0, all of it unexplained" \
		grep -qE " fstype=zfs .* state=leaked .* s_active=1 mounts=0 unexplained=1 " <<<"$(leak_line)"
	t_ok "evidence: the failed hold is listed as an acquisition" \
		leak_evidence '^  acquire .*kind=zfsvfs_hold_ebusy .*caller=zfs_ioc_userspace_many\+'
	t_ok "evidence: the unmount's release came from cleanup_mnt" \
		leak_evidence '^  release .*kind=deactivate_super .*caller=cleanup_mnt\+'
	t_ok "dmesg has refledger's line for it" \
		bash -c "dmesg | grep -q 'refledger: leaked superblock $sbid (zfs '"

	t_ok "zpool export fails: pool busy" bash -c "! zpool export tank 2>/tmp/zt18309.err"
	diag "$(cat /tmp/zt18309.err)"
	sed -n '/^busy /p' "$RL_DBG/leaks" | sed 's/^/# /'
	t_ok "leaks explains the refused export as a leaked reference" \
		grep -qE "^busy sb=$sbid fstype=zfs .* state=leaked .* verdict=leaked_reference$" "$RL_DBG/leaks"
	t_ok "events record the refused export once for the superblock" \
		test "$(grep -c "event=export_busy sb=$sbid " "$RL_DBG/events")" = 1

	t_ok "repair: zfstorn drops the leaked reference" bash -c "echo repair >$ctl"
	t_ok "generic_shutdown_super ran for tank/a's superblock" wait_for 3 shut_down
	line=$(leak_line)
	diag "$line"
	t_ok "the leak is kept as resolved" grep -qE ' state=resolved .* now=(shutdown|freed) ' <<<"$line"
	stalled=$(sed -n 's/.* stalled_ms=\([0-9]*\) .*/\1/p' <<<"$line")
	t_ok "resolved shows a stall of at least the grace period (${stalled:-?} ms)" test "${stalled:-0}" -ge "$grace"
	t_ok "zpool export succeeds after the repair" zpool export tank
fi
t_ok "no ZFS superblock is left" \
	bash -c "! grep -q 'fstype=zfs .*state=\(live\|pending\|detached\|leaked\)' $RL_DBG/superblocks"
t_ok "rmmod zfstorn" rmmod zfstorn
t_ok "rmmod zfs and spl" bash -c "rmmod zfs && rmmod spl"
t_ok "rmmod refledger" rl_unload
rm -f $vdev /tmp/zt18309.out /tmp/zt18309.err
t_ok "no kernel warning (OpenZFS's own lockdep reports aside)" no_kernel_reports
t_done
