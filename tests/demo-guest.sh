#!/bin/bash
# The guest side of `make demo`.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
D=/sys/kernel/debug/refledger
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
work=$(mktemp -d)

say() { printf '\n==> %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; eval "$@"; }

say "Load refledger"
show insmod "$top/refledger.ko"
show cat $D/probes

say "Ordinary traffic: ext4 on a loop device, and tmpfs"
truncate -s 64M "$work/ext4.img"
loop=$(losetup -f --show "$work/ext4.img")
mkfs.ext4 -q "$loop"
mkdir -p "$work/ext4" "$work/tmp"
show mount "$loop" "$work/ext4"
show mount -t tmpfs none "$work/tmp"
show "grep -E 'fstype=(ext4|tmpfs) ' $D/superblocks | tail -n 3"
show umount "$work/ext4" "$work/tmp"
show "tail -n 6 $D/events"

say "OpenZFS #18309: a hold that returns EBUSY keeps its s_active reference"
show insmod "$top/tests/fixtures/leakyfs/leakyfs.ko"
show "echo grace_ms=2000 > $D/control"
mkdir -p "$work/tank"
show mount -t leakyfs tank/home "$work/tank"
show "echo 'teardown tank/home' > /sys/kernel/debug/leakyfs/ctl"
show "echo 'hold tank/home' > /sys/kernel/debug/leakyfs/ctl"
show umount "$work/tank"
show "grep 's_id=tank/home' $D/superblocks"
say "After the grace period (2 s) and an audit"
sleep 3.5
show cat $D/leaks
show "dmesg --notime | grep 'refledger: leaked'"

say "The missing release (zfs_vfs_rele) lets the superblock shut down"
show "echo 'repair tank/home' > /sys/kernel/debug/leakyfs/ctl"
sleep 0.5
show "grep '^superblock' $D/leaks"
show "grep 's_id=tank/home' $D/events"
show rmmod leakyfs
show rmmod refledger
losetup -d "$loop"
