# Shared by tests/bench-guest.sh and tests/bench-profile.sh: sourced, with
# $top (the repository) and $churn (tests/bench/churn.c, built) set.

# bench_setup: debugfs mounted; a 64 MB ext4 image on a loop device
# ($loop); swapblk loaded (/dev/swapblk0, a module's disk); mount points
# $work/t (tmpfs) and $work/e (ext4).
bench_setup() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	work=$(mktemp -d)
	truncate -s 64M "$work/ext4.img"
	loop=$(losetup -f --show "$work/ext4.img")
	mkfs.ext4 -q "$loop"
	insmod "$top/tests/fixtures/swapblk/swapblk.ko"
	udevadm settle 2>/dev/null
	mkdir -p "$work/t" "$work/e"
}

# After a load: let deferred work (RCU callbacks, freeing of module init
# memory, the first audit) finish, and run each workload briefly, so that
# one-time costs (first records, call-site caches) are not measured.  Under
# -icount an idle guest skips ahead, so the sleeps cost no real time.
settle() {
	sleep 1
	"$churn" mount-tmpfs 100 "$work/t" >/dev/null
	"$churn" mount-ext4 10 "$loop" "$work/e" >/dev/null
	"$churn" openclose 1000 "$loop" >/dev/null
	"$churn" openclose 1000 /dev/swapblk0 >/dev/null
	sleep 1
}
