# Shared helpers for the guest tests; sourced by each tests/t*.sh.
#
# A test prints one KTAP result line per assertion ("ok N description" or
# "not ok N description"), diagnostics as "# ...", and its plan at the end.
# Its exit status is 0 when every assertion held, 4 when it skipped.

RL_TOP=${RL_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RL_BUILD=${RL_BUILD:-$RL_TOP}
RL_KO=${RL_KO:-$RL_BUILD/refledger.ko}
# The fixture modules, built for the running kernel.
RL_FIX=$RL_BUILD/tests/fixtures
RL_DBG=/sys/kernel/debug/refledger
. "$RL_TOP/tests/helpers/zfs-wrappers.sh"
_n=0
_failed=0

# t_ok DESCRIPTION COMMAND...: one assertion, passing if COMMAND succeeds.
t_ok() {
	local desc=$1
	shift
	_n=$((_n + 1))
	if "$@"; then
		echo "ok $_n $desc"
	else
		echo "not ok $_n $desc"
		_failed=$((_failed + 1))
	fi
}

# t_skip DESCRIPTION REASON: an assertion that cannot be checked here.
t_skip() {
	_n=$((_n + 1))
	echo "ok $_n $1 # SKIP $2"
}

diag() { echo "# $*"; }

# t_done: prints the plan and exits with the test's status.
t_done() {
	echo "1..$_n"
	[ "$_failed" = 0 ]
	exit $?
}

# probe_field SYMBOL FIELD: the value of FIELD on SYMBOL's line of `probes`.
probe_field() {
	awk -v s="symbol=$1" -v f="$2" '
		$1 == s { for (i = 2; i <= NF; i++) if (index($i, f "=") == 1) { print substr($i, length(f) + 2); exit } }
	' "$RL_DBG/probes"
}

rl_load() { insmod "$RL_KO" "$@"; }
rl_unload() { rmmod refledger; }
rl_loaded() { [ -d /sys/module/refledger ]; }

# sb_line DEV: the `superblocks` line of the newest superblock with device
# DEV (major:minor, as `mountpoint -d` prints it); a device number can be
# reused after a superblock is freed.
sb_line() {
	awk -v d="dev=$1" '
		{ for (i = 1; i <= NF; i++) if ($i == d) { for (j = 1; j <= NF; j++) if (index($j, "first_seen=") == 1) { t = substr($j, 12) + 0; if (t >= best) { best = t; line = $0 } } } }
		END { if (line != "") print line }
	' "$RL_DBG/superblocks"
}

# sb_field DEV FIELD: one field of that line.
sb_field() {
	sb_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

# A debug kernel (KASAN, lockdep, kmemleak; kmemleak's file says which)
# under TCG runs several times slower than a production one: time limits
# and grace periods that a test sets scale by RL_SCALE.
if [ -z "${RL_SCALE:-}" ]; then
	if [ -e /sys/kernel/debug/kmemleak ]; then RL_SCALE=4; else RL_SCALE=1; fi
fi

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds;
# fails after SECONDS (times RL_SCALE).
wait_for() {
	local limit=$(($1 * RL_SCALE)) i=0
	shift
	while ! "$@"; do
		i=$((i + 1))
		[ "$i" -ge $((limit * 10)) ] && return 1
		sleep 0.1
	done
}

# no_leaks: the leaks file lists no superblock.
no_leaks() { ! grep -q '^superblock ' "$RL_DBG/leaks"; }

# module_or_builtin NAME: NAME if it is a loaded module, "builtin" if it is
# built into the kernel, as refledger names a driver's or filesystem's module.
module_or_builtin() {
	if [ -e "/sys/module/$1/refcnt" ]; then echo "$1"; else echo builtin; fi
}

# ms_now: milliseconds since boot.
ms_now() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# no_kernel_reports: the kernel log holds no report that fails a run, by
# the rules scripts/ktap.py applies on the host (OpenZFS's own lockdep
# reports excepted); prints what it found.
no_kernel_reports() { dmesg | python3 "$RL_TOP/scripts/ktap.py" --check-log; }

# dmesg_mark: logs a mark and prints its time stamp, for dmesg_since.
dmesg_mark() {
	local tag="refledger-test: mark $$.$RANDOM$RANDOM"
	echo "$tag" >/dev/kmsg
	dmesg | awk -v m="$tag" 'index($0, m) { t = substr($0, 2, index($0, "]") - 2) + 0 } END { print t }'
}

# dmesg_since T: the kernel messages logged since dmesg_mark printed T, by
# their time stamps (a line count would be off once the ring buffer wraps).
dmesg_since() { dmesg | awk -v t="$1" '{ if (substr($0, 2, index($0, "]") - 2) + 0 >= t) print }'; }

# The guest runs the host's Python; /usr/bin's, not a per-user shim.
RL_PY=$(command -v /usr/bin/python3 || command -v python3)

# rlsys ARGS...: tests/helpers/rlsys.py, system calls a shell cannot check.
rlsys() { "$RL_PY" "$RL_TOP/tests/helpers/rlsys.py" "$@"; }

# write_errno FILE DATA: one write(2) of DATA (Python escapes such as \n
# and \x00 allowed) to FILE; prints OK or the errno's name (EINVAL, EBUSY,
# EACCES when the open is refused).  Unlike a shell redirect, it reports
# the system call's own result.
write_errno() { rlsys write "$1" "$2"; }

# ctl_rejects VALUE: writing VALUE and a newline to `control` fails with
# EINVAL.
ctl_rejects() { [ "$(write_errno "$RL_DBG/control" "$1\n")" = EINVAL ]; }

# rl_helper NAME: the path of the C helper tests/helpers/NAME.c, built for
# the guest by scripts/build.sh fixtures; built into /tmp here when this
# tree was not built that way.
rl_helper() {
	local bin=$RL_BUILD/tests/helpers/$1
	if [ ! -x "$bin" ]; then
		mkdir -p /tmp/rl-helpers
		bin=/tmp/rl-helpers/$1
		[ -x "$bin" ] || cc -O2 -Wall -o "$bin" "$RL_TOP/tests/helpers/$1.c" || return 1
	fi
	echo "$bin"
}

# Tests run helpers in `bash -c` and `wait_for` subshells too.
export RL_TOP RL_BUILD RL_KO RL_FIX RL_DBG RL_PY RL_SCALE
export -f probe_field sb_line sb_field no_leaks module_or_builtin ms_now dmesg_mark dmesg_since ctl_rejects no_kernel_reports \
	rlsys write_errno

# zfs_setup: finds the OpenZFS modules built for the running kernel (in
# $RL_OUT/zfs-dir) and sets ZDIR; returns 1 when there are none.  When the
# host's zpool and zfs are not that OpenZFS's (the stock kernel's 2.4.4 is
# built in the trixie build root named in $RL_OUT/zfs-root), puts wrappers
# first in PATH that run the build root's own zpool and zfs, with /proc,
# /sys, /dev, /run and /tmp of this guest mounted in it: pools, vdevs and
# mountpoints under /tmp are the same paths inside and out.  zfs_teardown
# undoes that.
zfs_setup() {
	ZDIR=$(cat "${RL_OUT:-/nonexistent}/zfs-dir" 2>/dev/null)
	[ -n "$ZDIR" ] && [ -e "$ZDIR/zfs.ko" ] || return 1
	local root c
	root=$(cat "$RL_OUT/zfs-root" 2>/dev/null)
	[ -n "$root" ] || return 0
	mountpoint -q "$root/proc" || mount -t proc proc "$root/proc" || return 1
	# Datasets are mounted from inside the root, under its /tmp: with this
	# guest's /tmp shared, those mounts propagate back to it.
	mount --make-shared /tmp || return 1
	for c in sys dev run tmp; do
		mountpoint -q "$root/$c" || mount --rbind "/$c" "$root/$c" || return 1
	done
	zfs_wrappers "$root"
}

# zfs_teardown: undoes zfs_setup's mounts, once the pools are exported, so
# that later tests see one mount per mount(2) under /tmp again.
zfs_teardown() {
	local root c
	root=$(cat "${RL_OUT:-/nonexistent}/zfs-root" 2>/dev/null)
	[ -n "$root" ] || return 0
	for c in tmp run dev sys proc; do
		mountpoint -q "$root/$c" && umount -R "$root/$c"
	done
	mount --make-private /tmp
	rm -rf /tmp/rl-zfs-bin
}
