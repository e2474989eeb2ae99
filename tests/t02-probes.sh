#!/bin/bash
# The probes file lists each probe with its state and hit count; a probe on a
# function that does not exist is listed as not armed, with the reason, and
# the module still loads; a malformed parameter is refused and changes
# nothing.
. "$(dirname "$0")/lib.sh"

t_ok "insmod succeeds" rl_load
diag "$(cat "$RL_DBG/probes")"
t_ok "deactivate_super is armed" test "$(probe_field deactivate_super state)" = armed
before=$(probe_field deactivate_super hits)
for i in 1 2 3; do mount -t tmpfs none /mnt && umount /mnt; done
after=$(probe_field deactivate_super hits)
diag "deactivate_super hits: $before before, $after after 3 tmpfs mount/umount"
t_ok "deactivate_super hits rise by at least 3 over 3 tmpfs unmounts" test $((after - before)) -ge 3
t_ok "rmmod succeeds" rl_unload

t_ok "insmod with a probe on a missing symbol succeeds" \
	rl_load extra_probes=refledger_no_such_function,user_statfs
diag "$(cat "$RL_DBG/probes")"
t_ok "missing symbol is listed as failed" \
	test "$(probe_field refledger_no_such_function state)" = failed
t_ok "missing symbol's reason says not found" \
	grep -q 'symbol=refledger_no_such_function .*error=-2 reason="symbol not found' "$RL_DBG/probes"
t_ok "other probes are still armed" test "$(probe_field deactivate_super state)" = armed
t_ok "an extra probe on a real function is armed" test "$(probe_field user_statfs state)" = armed
before=$(probe_field user_statfs hits)
stat -f / >/dev/null
stat -f /tmp >/dev/null
after=$(probe_field user_statfs hits)
t_ok "the extra probe counts calls" test $((after - before)) -ge 2
t_ok "rmmod succeeds" rl_unload

t_ok "a malformed extra_probes is refused" bash -c "! insmod $RL_KO 'extra_probes=bad;name' 2>/dev/null"
t_ok "refused load leaves no module" bash -c '! test -d /sys/module/refledger'
t_ok "refused load leaves no debugfs files" test ! -e "$RL_DBG"
t_ok "refused load explains itself in dmesg" bash -c "dmesg | grep -q \"refledger: extra_probes: 'bad;name' is not a symbol name\""
t_ok "too many extra probes are refused" \
	bash -c "! insmod $RL_KO extra_probes=a,b,c,d,e,f,g,h,i 2>/dev/null"
t_done
