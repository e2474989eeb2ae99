# Shared by tests/bench-guest.sh and tests/bench-profile.sh: sourced, with
# $top (the repository), $out (the output directory, holding zfs-dir and
# zfs-root when OpenZFS was built), $churn (tests/bench/churn.c, built) and
# $RL_BUILD (where refledger.ko and the fixtures were built for this
# kernel) set.

. "$top/tests/helpers/zfs-wrappers.sh"
RL_BUILD=${RL_BUILD:-$top}
KO=$RL_BUILD/refledger.ko
NULLPROBE=$RL_BUILD/tests/fixtures/nullprobe/nullprobe.ko

# The mount workloads: name, filesystem type, and the image size mkfs needs.
MOUNT_FS="ext4 xfs btrfs"
declare -A FS_SIZE=([ext4]=64M [xfs]=300M [btrfs]=128M)
declare -A FS_DEV
# The workloads, in table order.  ZFS is added when its modules are here.
WORKLOADS="mount_tmpfs mount_ext4 mount_xfs mount_btrfs bdev_openclose module_getput"

# bench_setup: debugfs mounted; an ext4, an xfs and a btrfs image, each on
# a loop device (${FS_DEV[type]}; $loop is ext4's); swapblk loaded
# (/dev/swapblk0, a module's disk); mount points $work/t (tmpfs) and
# $work/m; OpenZFS loaded with a pool, when it was built for this kernel
# (zfs_setup).
bench_setup() {
	# Kernel messages stay in the log buffer but leave the serial console:
	# printing the filesystems' mount messages there would be most of what
	# a mount costs under TCG, and no test box logs to a serial console.
	dmesg -n 1
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	work=$(mktemp -d)
	modprobe -q loop 2>/dev/null
	local fs
	for fs in $MOUNT_FS; do
		truncate -s "${FS_SIZE[$fs]}" "$work/$fs.img"
		FS_DEV[$fs]=$(losetup -f --show "$work/$fs.img")
		case $fs in
		ext4) mkfs.ext4 -q "${FS_DEV[$fs]}" ;;
		xfs) mkfs.xfs -q -f "${FS_DEV[$fs]}" ;;
		btrfs) mkfs.btrfs -q -f "${FS_DEV[$fs]}" >/dev/null ;;
		esac
	done
	loop=${FS_DEV[ext4]}
	insmod "$RL_BUILD/tests/fixtures/swapblk/swapblk.ko"
	udevadm settle 2>/dev/null
	mkdir -p "$work/t" "$work/m"
	zfs_setup && WORKLOADS="$WORKLOADS zfs_churn"
	# WORKLOADS=... make bench: only these (the read cost is always
	# measured).  For working on one path; a full run keeps them all.
	if [ -n "${RL_BENCH_WORKLOADS:-}" ]; then
		local w keep=
		# Commas or spaces between names (the VM gets its command as one
		# string, so bench.sh passes commas).
		for w in ${RL_BENCH_WORKLOADS//,/ }; do
			case " $WORKLOADS " in
			*" $w "*) keep="$keep $w" ;;
			esac
		done
		WORKLOADS=${keep# }
	fi
}

# root_setup: when the stock kernel's trixie build root is named in
# $out/zfs-root (its OpenZFS userland and bpftrace run there), sets $root
# and mounts this guest's /proc, /sys (with tracefs and debugfs), /dev, /run
# and /tmp in it, so that paths under /tmp are the same inside and out.
# /tmp is made private first: the workloads' mounts under it must not
# propagate into the root, which would double every mount(2) they time.
root_setup() {
	root=$(cat "$out/zfs-root" 2>/dev/null)
	[ -n "$root" ] || return 0
	[ -n "${root_done:-}" ] && return 0
	mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing
	mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
	mountpoint -q /tmp && mount --make-rprivate /tmp
	local c
	for c in sys dev run tmp; do
		mountpoint -q "$root/$c" || mount --rbind "/$c" "$root/$c"
	done
	root_done=1
}

# peer_setup: the peer, bpftrace running tests/bench/peer.bt.  On the stock
# kernel it is trixie's bpftrace, run in the build root (as a trixie user
# runs it, on this kernel's BTF); elsewhere the host's.  Without OpenZFS
# loaded, the script's ZFS part is left out.  Sets $peer to "peer" if it
# runs here, else empty, and $peer_why to what ran or why not; then
# peer_start and peer_stop start and stop it.
peer_setup() {
	root_setup
	bt=(bpftrace)
	[ -n "$root" ] && [ -x "$root/usr/bin/bpftrace" ] && bt=(chroot "$root" /usr/bin/bpftrace)
	if [ -e /sys/module/zfs ]; then
		cp "$top/tests/bench/peer.bt" "$work/peer.bt"
	else
		sed '\|/\* zfs: begin \*/|,\|/\* zfs: end \*/|d' "$top/tests/bench/peer.bt" >"$work/peer.bt"
	fi
	bt_pid=
	peer=
	if ! "${bt[@]}" --version >/dev/null 2>&1; then
		peer_why="bpftrace is not installed"
	elif ! timeout 300 "${bt[@]}" -e 'BEGIN { exit(); }' >"$work/bt.log" 2>&1; then
		peer_why="bpftrace cannot run here: $(head -n3 "$work/bt.log" | tr '\n' ' ')"
	elif ! peer_start; then
		peer_why="bpftrace could not attach peer.bt: $(head -n5 "$work/bt.log" | tr '\n' ' ')"
		peer_stop
	else
		peer_stop
		peer=peer
		peer_why="$("${bt[@]}" --version) ran tests/bench/peer.bt$([ -e /sys/kernel/btf/vmlinux ] && echo ", with the kernel's BTF")"
	fi
}
peer_start() {
	"${bt[@]}" "$work/peer.bt" >"$work/bt.log" 2>&1 &
	bt_pid=$!
	# Compiling and attaching takes a while under TCG.
	for _ in $(seq 600); do
		grep -q '^Attach' "$work/bt.log" && { sleep 1; return 0; }
		kill -0 $bt_pid 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}
peer_stop() {
	kill -INT $bt_pid 2>/dev/null
	wait $bt_pid 2>/dev/null
}

# zfs_setup: loads the OpenZFS modules built for this kernel ($out/zfs-dir)
# and makes a pool on a file, tank, mounted at $work/tank.  The stock
# kernel's OpenZFS 2.4.4 userland is the trixie build root's ($out/zfs-root):
# wrappers first in PATH run its zpool and zfs with this guest's /proc,
# /sys, /dev, /run and /tmp mounted in it.  Returns 1 when there is no
# OpenZFS for this kernel, with the reason in $zfs_why.
zfs_setup() {
	local zdir
	zdir=$(cat "$out/zfs-dir" 2>/dev/null)
	if [ -z "$zdir" ] || [ ! -e "$zdir/zfs.ko" ]; then
		zfs_why="no OpenZFS built for this kernel"
		return 1
	fi
	root_setup
	[ -n "$root" ] && zfs_wrappers "$root"
	# The ARC would take half the guest's memory, which the read-cost
	# measurement's 100,000 mounts need.
	insmod "$zdir/spl.ko" && insmod "$zdir/zfs.ko" zfs_arc_max=$((64 << 20)) || {
		zfs_why="zfs.ko does not load"
		return 1
	}
	truncate -s 512M "$work/zv0"
	zpool create -f -m "$work/tank" tank "$work/zv0" || {
		zfs_why="zpool create failed"
		return 1
	}
	zfs_why="OpenZFS $(cat /sys/module/zfs/version)"
}

# run_workload NAME OPS: runs workload NAME with OPS operations; prints
# churn's line.
run_workload() {
	case $1 in
	mount_tmpfs) "$churn" mount-tmpfs "$2" "$work/t" ;;
	mount_*) "$churn" mount-dev "$2" "${1#mount_}" "${FS_DEV[${1#mount_}]}" "$work/m" ;;
	bdev_openclose) "$churn" openclose "$2" "$loop" ;;
	module_getput) "$churn" openclose "$2" /dev/swapblk0 ;;
	# One operation: a dataset created, snapshotted and destroyed, each
	# by OpenZFS's own command.
	zfs_churn) "$churn" shell "$2" "zfs create tank/c && zfs snapshot tank/c@s && zfs destroy -r tank/c" ;;
	esac
}

# Operations per measurement: each takes a few seconds of guest time.
declare -A OPS=([mount_tmpfs]=1000 [mount_ext4]=150 [mount_xfs]=100 [mount_btrfs]=60
	[bdev_openclose]=10000 [module_getput]=10000 [zfs_churn]=6)

# nullprobe_args: nullprobe's module parameters naming the probes refledger
# arms on this kernel (OpenZFS loaded), read from its probes file.
nullprobe_args() {
	insmod "$KO" || return 1
	local kp kr
	kp=$(awk '/state=armed/ && /type=kprobe/ { sub("symbol=", "", $1); printf "%s%s", s, $1; s = "," }' /sys/kernel/debug/refledger/probes)
	kr=$(awk '/state=armed/ && /type=kretprobe/ { sub("symbol=", "", $1); printf "%s%s", s, $1; s = "," }' /sys/kernel/debug/refledger/probes)
	rmmod refledger
	echo "kprobes=$kp kretprobes=$kr"
}

# After a load: let deferred work (RCU callbacks, freeing of module init
# memory, the first audit) finish, and run each workload briefly, so that
# one-time costs (first records, call-site caches) are not measured.  Under
# -icount an idle guest skips ahead, so the sleeps cost no real time.
settle() {
	sleep 1
	local w
	for w in $WORKLOADS; do
		case $w in
		zfs_churn) run_workload $w 1 ;;
		*) run_workload $w $((OPS[$w] / 10)) ;;
		esac
	done >/dev/null
	sleep 1
}
