#!/bin/bash
# elastio-snap #163, reproduced by the swapblk/swaptrace fixtures: while a
# process holds /dev/swapblk0 open (a reference on swapblk), swaptrace swaps
# the disk's fops for a copy it owns; the close then puts swaptrace, whose
# refcount goes to -1.  refledger must flag the underflow with the offending
# put's call site.  The fixture then repairs both refcounts so the suite
# carries on.  Then: the module filter really limits counting, no underflow
# is flagged while rmmod races with gets and puts, and `reset` forgets the
# module ledger.
. "$(dirname "$0")/lib.sh"

fx=$RL_FIX/swapblk

# mod_field NAME FIELD: FIELD of module NAME's line in `modules`, the loaded
# one if there is one.
mod_field() {
	awk -v n="module=$1" -v f="$2" '
		$1 == n { for (i = 2; i <= NF; i++) if (index($i, f "=") == 1) { v = substr($i, length(f) + 2); if ($2 == "state=loaded") { print v; exit } last = v } }
		END { if (last != "") print last }
	' "$RL_DBG/modules" | head -n1
}
# opens N: opens and closes /dev/swapblk0 N times (a get and a put of
# swapblk each).
opens() {
	local i
	for ((i = 0; i < $1; i++)); do : </dev/swapblk0 || return 1; done
}
# unload NAME: delete_module(2) without waiting, as rmmod does, but without
# kmod's own check of the refcount first, so that it races with gets and
# puts in the kernel.
unload() {
	if command -v perl >/dev/null; then
		perl -e 'exit(syscall(176, $ARGV[0], 04000) == 0 ? 0 : 1)' "$1"
	else
		rmmod "$1" 2>/dev/null
	fi
}
t_ok "insmod refledger" rl_load
t_ok "insmod swapblk" insmod "$fx/swapblk.ko"
t_ok "insmod swaptrace" insmod "$fx/swaptrace.ko"
udevadm settle 2>/dev/null
exec 5</dev/swapblk0
t_ok "swapblk is held by our open (refcnt 1)" test "$(cat /sys/module/swapblk/refcnt)" = 1
t_ok "swaptrace swaps the disk's fops" bash -c "echo swap > /sys/kernel/debug/swaptrace/ctl"
exec 5<&-
diag "refcnt after the close: swapblk=$(cat /sys/module/swapblk/refcnt) swaptrace=$(cat /sys/module/swaptrace/refcnt)"
t_ok "the close put the wrong module: swaptrace refcnt is -1" test "$(cat /sys/module/swaptrace/refcnt)" = -1
t_ok "and swapblk kept a reference nobody holds" test "$(cat /sys/module/swapblk/refcnt)" = 1
sed -n '/^module_underflow/,/^[a-z]/p' "$RL_DBG/leaks" | sed 's/^/# /'
t_ok "leaks flags swaptrace's underflow" \
	grep -qE '^module_underflow module=swaptrace balance_at_put=-1 .* gets=0 puts=2 baseline=1 balance=-1 exact=yes' "$RL_DBG/leaks"
t_ok "the flag names the offending put's call site (bdev_release)" \
	bash -c "grep -A2 '^module_underflow module=swaptrace' $RL_DBG/leaks | grep -q 'put t=.* comm=bash caller=bdev_release+'"
t_ok "with a stack" \
	bash -c "grep -A8 '^module_underflow module=swaptrace' $RL_DBG/leaks | grep -q '^    at '"
t_ok "modules shows swapblk with one get more than puts" \
	grep -qE '^module=swapblk state=loaded refcount=1 gets=[0-9]+ puts=[0-9]+ baseline=1 balance=1 exact=yes ' "$RL_DBG/modules"
t_ok "no kernel warning" bash -c "! dmesg | grep -q 'WARNING:'"

t_ok "swaptrace restores the fops and repairs both refcounts" \
	bash -c "echo restore > /sys/kernel/debug/swaptrace/ctl"
t_ok "swaptrace refcnt is back to 0" test "$(cat /sys/module/swaptrace/refcnt)" = 0
t_ok "swapblk's balance is its refcount again (0)" \
	grep -qE '^module=swapblk state=loaded refcount=0 .* balance=0 exact=yes ' "$RL_DBG/modules"

# The filter: a module outside it is not counted, one inside it is.
t_ok "modules=swaptrace limits tracking" bash -c "echo modules=swaptrace > $RL_DBG/control"
t_ok "control shows the filter" grep -qx 'modules=swaptrace' "$RL_DBG/control"
g0=$(mod_field swapblk gets)
p0=$(mod_field swapblk puts)
t_ok "open and close swapblk0 three times" opens 3
t_ok "swapblk, outside the filter, is not tracked" \
	grep -qE '^module=swapblk state=loaded .* tracked=no ' "$RL_DBG/modules"
t_ok "its gets and puts were not counted" \
	test "$(mod_field swapblk gets)/$(mod_field swapblk puts)" = "$g0/$p0"
t_ok "and its counts are no longer exact" test "$(mod_field swapblk exact)" = no
t_ok "swaptrace, inside the filter, is tracked" \
	grep -qE '^module=swaptrace state=loaded .* tracked=yes ' "$RL_DBG/modules"
t_ok "modules=swapblk" bash -c "echo modules=swapblk > $RL_DBG/control"
t_ok "open and close swapblk0 three times" opens 3
t_ok "swapblk, inside the filter, is tracked" \
	grep -qE '^module=swapblk state=loaded .* tracked=yes ' "$RL_DBG/modules"
t_ok "and its three gets and puts were counted" \
	test "$(mod_field swapblk gets)/$(mod_field swapblk puts)" = "$((g0 + 3))/$((p0 + 3))"
t_ok "swaptrace, now outside, is not tracked" \
	grep -qE '^module=swaptrace state=loaded .* tracked=no ' "$RL_DBG/modules"
t_ok "modules=all tracks everything again" bash -c "echo modules=all > $RL_DBG/control"
t_ok "a bad module filter is rejected" ctl_rejects "modules=a;b"

t_ok "rmmod swaptrace" rmmod swaptrace
t_ok "rmmod swapblk" rmmod swapblk
t_ok "the flag is kept after the module is gone" grep -q '^module_underflow module=swaptrace' "$RL_DBG/leaks"
t_ok "an unloaded module's refcount is not read" \
	grep -qE '^module=swaptrace state=unloaded refcount=- ' "$RL_DBG/modules"

# rmmod racing with the last put: try_release_module_ref takes the refcount
# to -1 for a moment, and a put's tracepoint can fire after the module is
# gone.  Neither is an underflow.  Two openers get and put swapblk while it
# is unloaded and loaded again, several times.
t_ok "insmod swapblk" insmod "$fx/swapblk.ko"
run=/tmp/rl-t08-churn
touch $run
for o in 1 2; do
	(while [ -e $run ]; do { : </dev/swapblk0; } 2>/dev/null || sleep 0.05; done) &
done
unloads=0
refusals=0
while [ $unloads -lt 6 ] && [ $((unloads + refusals)) -lt 300 ]; do
	if unload swapblk; then
		unloads=$((unloads + 1))
		insmod "$fx/swapblk.ko" || break
	else
		refusals=$((refusals + 1))
	fi
done
rm -f $run
wait
udevadm settle 2>/dev/null
diag "churn: $unloads unloads, $refusals refusals"
[ -d /sys/module/swapblk ] || insmod "$fx/swapblk.ko"
t_ok "swapblk was unloaded and loaded again under the openers" test "$unloads" = 6
t_ok "no underflow is flagged for swapblk" \
	bash -c "! grep -q '^module_underflow module=swapblk' $RL_DBG/leaks"
t_ok "nor shown in modules" bash -c "! grep -qE '^module=swapblk .* underflow=yes' $RL_DBG/modules"
t_ok "the loaded swapblk's exact balance is its refcount (0)" \
	grep -qE '^module=swapblk state=loaded refcount=0 .* balance=0 exact=yes ' "$RL_DBG/modules"

# reset forgets the module ledger: records, counts and flags.
t_ok "reset" bash -c "echo reset > $RL_DBG/control"
t_ok "the underflow flag is forgotten" bash -c "! grep -q '^module_underflow' $RL_DBG/leaks"
t_ok "no module is flagged in modules" bash -c "! grep -q 'underflow=yes' $RL_DBG/modules"
t_ok "swaptrace's record is forgotten" bash -c "! grep -q '^module=swaptrace ' $RL_DBG/modules"
t_ok "swapblk's records are forgotten" bash -c "! grep -q '^module=swapblk ' $RL_DBG/modules"
t_ok "open and close swapblk0 once" opens 1
t_ok "swapblk is counted from scratch, from an estimate" \
	grep -qE '^module=swapblk state=loaded refcount=0 gets=1 puts=1 baseline=0 balance=0 exact=no ' "$RL_DBG/modules"
t_ok "rmmod swapblk" rmmod swapblk
t_ok "rmmod refledger" rl_unload
t_done
