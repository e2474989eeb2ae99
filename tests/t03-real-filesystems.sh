#!/bin/bash
# No false leaks on real filesystems: ext4, xfs and btrfs on loop devices and
# tmpfs are mounted, used and unmounted; btrfs is remounted read-only before
# its unmount (the sequence of the December 2020 btrfs transaction leak).
# With a short grace period, every superblock must reach shutdown and
# nothing may be flagged.
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d)
t_ok "insmod succeeds" rl_load
t_ok "grace period set to 1000 ms" bash -c "echo grace_ms=1000 > $RL_DBG/control"

declare -A devs
loops=()
for fs in ext4 xfs btrfs; do
	img=$work/$fs.img
	truncate -s 512M "$img"
	loop=$(losetup -f --show "$img")
	case $fs in
	ext4) mkfs.ext4 -q "$loop" ;;
	xfs) mkfs.xfs -q "$loop" ;;
	btrfs) mkfs.btrfs -q "$loop" >/dev/null ;;
	esac
	mkdir -p "$work/$fs"
	t_ok "$fs on $(basename "$loop") mounts" mount "$loop" "$work/$fs"
	devs[$fs]=$(mountpoint -d "$work/$fs")
	dd if=/dev/urandom of="$work/$fs/data" bs=64k count=16 status=none
	sync
	diag "$(sb_line "${devs[$fs]}")"
	t_ok "$fs superblock is listed live with one mount" \
		bash -c "[ \"\$(sb_field ${devs[$fs]} state)\" = live ] && [ \"\$(sb_field ${devs[$fs]} mounts)\" = 1 ]"
	if [ "$fs" = btrfs ]; then
		t_ok "btrfs remounts read-only" mount -o remount,ro "$work/$fs"
	fi
	t_ok "$fs unmounts" umount "$work/$fs"
	loops+=("$loop")
done

mkdir -p "$work/tmpfs"
mount -t tmpfs none "$work/tmpfs"
devs[tmpfs]=$(mountpoint -d "$work/tmpfs")
echo hello >"$work/tmpfs/f"
t_ok "tmpfs unmounts" umount "$work/tmpfs"

# Past the grace period plus an audit period, with room for a slow VM.
sleep 3
for fs in ext4 xfs btrfs tmpfs; do
	state=$(sb_field "${devs[$fs]}" state)
	diag "$fs: $(sb_line "${devs[$fs]}")"
	t_ok "$fs superblock was shut down and freed (state=$state)" \
		bash -c "[ '$state' = freed ] || [ '$state' = shutdown ]"
done
t_ok "nothing is flagged in leaks" no_leaks
t_ok "no leak line in dmesg" bash -c "! dmesg | grep -q 'refledger: leaked'"
t_ok "events show the btrfs shutdown" grep -q 'event=shutdown .*fstype=btrfs' "$RL_DBG/events"
t_ok "rmmod succeeds" rl_unload
for l in "${loops[@]}"; do losetup -d "$l"; done
rm -rf "$work"
t_done
