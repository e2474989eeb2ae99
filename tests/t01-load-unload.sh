#!/bin/bash
# The module loads, creates its debugfs files root-only, and unloads leaving
# nothing behind, twenty times in a row.
. "$(dirname "$0")/lib.sh"

t_ok "insmod succeeds" rl_load
t_ok "debugfs directory exists" test -d "$RL_DBG"
# Every file root-only: control and holders read-write (0600), the rest
# read-only (0400).
modes_ok() {
	local f want ok=0
	for f in "$RL_DBG"/*; do
		want=400
		case $(basename "$f") in control | holders) want=600 ;; esac
		[ "$(stat -c %a "$f")" = "$want" ] && continue
		echo "# $(basename "$f") has mode $(stat -c %a "$f"), not $want"
		ok=1
	done
	return $ok
}
t_ok "every file is root-only (control and holders 0600, the others 0400)" modes_ok
# The debugfs root is 0700, which alone keeps other users out; with it and
# refledger's directory made traversable for a moment, the files' own modes
# must still refuse an unprivileged user every read and write.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
dbg_mode=$(stat -c %a /sys/kernel/debug)
dir_mode=$(stat -c %a "$RL_DBG")
chmod o+x /sys/kernel/debug "$RL_DBG"
unprivileged_refused() {
	local f name ok=0 w
	for f in "$RL_DBG"/*; do
		name=$(basename "$f")
		if ! as_nobody test -e "$f"; then
			echo "# $name: not even reachable, so this proves nothing"
			ok=1
		fi
		if as_nobody cat "$f" >/dev/null 2>&1; then
			echo "# $name: readable by uid 65534"
			ok=1
		fi
		w=$(as_nobody "$RL_PY" "$RL_TOP/tests/helpers/rlsys.py" write "$f" 'reset\n')
		if [ "$w" != EACCES ]; then
			echo "# $name: a write by uid 65534 gave $w, not EACCES"
			ok=1
		fi
	done
	return $ok
}
t_ok "with the directories traversable, uid 65534 can neither read nor write any file" \
	unprivileged_refused
chmod "$dbg_mode" /sys/kernel/debug
chmod "$dir_mode" "$RL_DBG"
t_ok "the debugfs directories' modes are restored" \
	test "$(stat -c %a /sys/kernel/debug):$(stat -c %a "$RL_DBG")" = "$dbg_mode:$dir_mode"
t_ok "rmmod succeeds" rl_unload
t_ok "debugfs directory is gone after unload" test ! -e "$RL_DBG"

fails=0
for i in $(seq 20); do
	if ! rl_load; then fails=$((fails + 1)); continue; fi
	cat "$RL_DBG/probes" >/dev/null || fails=$((fails + 1))
	mount -t tmpfs none /mnt && umount /mnt
	rl_unload || fails=$((fails + 1))
done
diag "20 load/read/unload cycles, $fails failures"
t_ok "20 load/unload cycles in a row succeed" test "$fails" = 0
t_ok "module is gone from /sys/module" test ! -d /sys/module/refledger
t_ok "no kernel warning during the cycles" bash -c "! dmesg | grep -qE 'WARNING:|BUG:|Oops'"
t_done
