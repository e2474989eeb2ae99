#!/bin/bash
# Fault injection: refledger is loaded with its Nth allocation failing
# (failslab and fail_page_alloc, through the calling task's
# /proc/thread-self/fail-nth, around one finit_module(2) by
# tests/helpers/failnth.c), for every N the load passes through, or a dense
# sample of them when there are too many for the time budget.  Each load
# either succeeds (and unloads) or fails with an error, and leaves nothing
# behind: no module, no debugfs directory, no registered probe; a plain load
# works afterwards.  Then kmemleak finds nothing of refledger's.
. "$(dirname "$0")/lib.sh"

fi_dirs=(/sys/kernel/debug/failslab /sys/kernel/debug/fail_page_alloc)
if [ ! -e /proc/thread-self/fail-nth ] || [ ! -d /sys/kernel/debug/failslab ]; then
	t_skip "fault injection" "this kernel has no fail-nth or failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)"
	t_done
fi
failnth=$(rl_helper failnth) || {
	t_ok "the failnth helper is built" false
	t_done
}
# Seconds of fault-injected loads; RL_FI_BUDGET scales it.
budget=${RL_FI_BUDGET:-240}

# failslab and fail_page_alloc skip allocations that may sleep by default
# (ignore-gfp-wait=Y), which is nearly all of a module load's: count them
# too, quietly, and put the settings back at the end.
declare -A saved
fi_set() {
	local d f
	for d in "${fi_dirs[@]}"; do
		[ -d "$d" ] || continue
		for f in ignore-gfp-wait verbose; do
			[ -e "$d/$f" ] || continue
			saved[$d/$f]=$(cat "$d/$f")
		done
		echo N >"$d/ignore-gfp-wait"
		echo 0 >"$d/verbose"
	done
}
fi_restore() {
	local f
	for f in "${!saved[@]}"; do echo "${saved[$f]}" >"$f"; done
}
trap fi_restore EXIT

kprobes() { sort /sys/kernel/debug/kprobes/list 2>/dev/null; }
kprobes_before=$(kprobes)
# clean: no trace of refledger (after a failed load, or after its rmmod).
clean() { [ ! -e /sys/module/refledger ] && [ ! -e "$RL_DBG" ] && [ "$(kprobes)" = "$kprobes_before" ]; }

# A plain load first: the probes it arms, to compare the last load with.
probe_states() { sed -E 's/^(symbol=[^ ]+) .*(state=[a-z]+).*/\1 \2/' "$RL_DBG/probes" | sort; }
t_ok "a plain load" rl_load
states=$(probe_states)
t_ok "rmmod" rl_unload

fi_set
# fnth N [PARAMS]: one load with the Nth point failing; sets result,
# injected and left.
fnth() {
	local line
	line=$("$failnth" "$@") || return 1
	result=${line#result=}
	result=${result%% *}
	injected=$(sed -n 's/.* injected=\([01]\) .*/\1/p' <<<"$line")
	left=${line##*left=}
}
# How many points a whole load passes through: a load with a fail-nth past
# them all, then back out.  And how many a load refused by its parameter
# passes through, before refledger's init allocates anything: the points in
# between are refledger's own.
big=10000000
fnth $big "$RL_KO"
t_ok "the counting load succeeds" test "$result" = 0
total=$((big - left))
rl_unload
fnth $big "$RL_KO" "extra_probes=bad;name"
loader=$((big - left))
t_ok "a load passes through fault-injection points ($total)" test "$total" -gt 0
diag "a load passes $total points; one refused by its parameter $loader (so about $((total - loader)) are refledger's init's)"
t_ok "the refused load left nothing" clean

# Which N to try: every N of refledger's init (from a little before the
# refused load's count, where init starts), or an even sample of them if
# the budget is too small, plus a sparser sample of the loader's own points.
tried=0 failed=0 succeeded=0 bad=0
start=$(date +%s)
one() {
	local n=$1
	fnth "$n" "$RL_KO" || { bad=$((bad + 1)); diag "N=$n: the helper failed"; return; }
	tried=$((tried + 1))
	if [ "$result" = 0 ]; then
		succeeded=$((succeeded + 1))
		if ! rl_unload; then
			bad=$((bad + 1))
			diag "N=$n: loaded (injected=$injected), but rmmod failed"
		fi
	else
		failed=$((failed + 1))
		[ "$injected" = 1 ] || { bad=$((bad + 1)); diag "N=$n: failed with $result without an injected fault"; }
	fi
	if ! clean; then
		bad=$((bad + 1))
		diag "N=$n: result=$result injected=$injected left something behind:" \
			"$(ls -d /sys/module/refledger $RL_DBG 2>/dev/null | tr '\n' ' ')" \
			"$(diff <(echo "$kprobes_before") <(kprobes) | grep -c '^>') probes"
		rmmod refledger 2>/dev/null
	fi
}
# Time one load to size the sample.
t0=$(date +%s%N)
one "$total"
per_ms=$((($(date +%s%N) - t0) / 1000000 + 1))
slots=$((budget * 1000 / per_ms))
lo=$((loader > 20 ? loader - 20 : 1))
init_points=$((total - lo + 1))
# Three quarters of the budget for init's points, the rest for the loader's.
init_slots=$((slots * 3 / 4))
step=$(((init_points + init_slots - 1) / (init_slots > 0 ? init_slots : 1)))
[ "$step" -ge 1 ] || step=1
loader_slots=$((slots - init_slots))
lstep=$(((lo + loader_slots - 1) / (loader_slots > 0 ? loader_slots : 1)))
[ "$lstep" -ge 1 ] || lstep=1
diag "about ${per_ms} ms a load: init points $lo..$total every $step, loader points 1..$lo every $lstep"
# In random order, so that running out of time (failed loads are quicker
# than the one timed, but successful ones unload too) still leaves an even
# sample of each.
for n in $(seq "$lo" "$step" "$total" | shuf); do
	[ "$(date +%s)" -lt $((start + budget * 3 / 4)) ] || break
	one "$n"
done
for n in $(seq 1 "$lstep" "$lo" | shuf); do
	[ "$(date +%s)" -lt $((start + budget)) ] || break
	one "$n"
done
fi_restore
secs=$(($(date +%s) - start))
diag "fault injection: $tried loads tried, $failed failed cleanly, $succeeded succeeded despite the fault, in ${secs}s ($bad problems)"
t_ok "every fault-injected load failed with an error or succeeded and unloaded, leaving nothing behind" test "$bad" = 0
t_ok "some loads failed (faults were injected)" test "$failed" -gt 0
t_ok "a plain load works afterwards" rl_load
t_ok "with every probe as at the first load" test "$(probe_states)" = "$states"

# kmemleak: a report whose allocation stack shows refledger.  Scanned with
# refledger loaded, so that its addresses resolve to its symbols.
kml=/sys/kernel/debug/kmemleak
if [ -w "$kml" ]; then
	sleep 5
	echo scan >"$kml"
	echo scan >"$kml"
	report=$(cat "$kml")
	diag "kmemleak: $(grep -c '^unreferenced object' <<<"$report") unreferenced objects in all"
	# The objects whose report matches a pattern, by their first line.
	objects() { awk -v re="$1" '/^unreferenced object/ { obj = $0 } $0 ~ re && obj { print obj; obj = "" }' <<<"$report"; }
	ours=$(objects refledger)
	[ -n "$ours" ] && sed 's/^/# refledger: /' <<<"$ours" | head -n 20
	t_ok "kmemleak reports nothing that mentions refledger" test -z "$ours"
	# The fault-injected loads ran as the helper: whatever they leaked,
	# in the module loader or in refledger's init (whose addresses no
	# longer resolve once it unloaded), was allocated by comm "failnth".
	ours=$(objects 'comm "failnth"')
	[ -n "$ours" ] && sed 's/^/# failnth: /' <<<"$ours" | head -n 20
	t_ok "kmemleak reports nothing allocated during the fault-injected loads" test -z "$ours"
else
	t_skip "kmemleak" "this kernel has no kmemleak"
fi
t_ok "rmmod" rl_unload
t_done
