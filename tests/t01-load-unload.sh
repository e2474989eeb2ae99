#!/bin/bash
# The module loads, creates its debugfs files root-only, and unloads leaving
# nothing behind, twenty times in a row.
. "$(dirname "$0")/lib.sh"

t_ok "insmod succeeds" rl_load
t_ok "debugfs directory exists" test -d "$RL_DBG"
t_ok "probes file is root-only (0400)" test "$(stat -c %a "$RL_DBG/probes")" = 400
t_ok "probes is not readable by an unprivileged user" \
	bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat $RL_DBG/probes >/dev/null 2>&1"
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
