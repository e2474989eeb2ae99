# Sourced by tests/lib.sh and tests/bench/common.sh.
#
# zfs_wrappers ROOT: puts wrappers for zpool and zfs first in PATH that run
# ROOT's own (the stock kernel's OpenZFS 2.4.4 userland, in the trixie
# build root), chrooted; the caller has mounted /proc, /sys, /dev, /run and
# /tmp in ROOT, so that paths under /tmp are the same inside and out.
zfs_wrappers() {
	local c
	mkdir -p /tmp/rl-zfs-bin
	for c in zpool zfs; do
		printf '#!/bin/sh\nexec chroot "%s" /usr/sbin/%s "$@"\n' "$1" "$c" >/tmp/rl-zfs-bin/$c
		chmod +x /tmp/rl-zfs-bin/$c
	done
	PATH=/tmp/rl-zfs-bin:$PATH
}
