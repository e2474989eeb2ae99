#!/bin/bash
# Bad input: thousands of malformed writes to `control` (empty, oversized,
# binary, NUL bytes, each command with out-of-range, negative, overflowing
# and non-numeric values, trailing junk, several commands in one write, and
# random mutations of valid commands) are each refused with EINVAL, checked
# at the write(2) itself, and leave the settings as they were.  Bad
# extra_probes= values at insmod are refused with a message and leave
# nothing behind.  The fixtures' ctl files refuse junk too.
. "$(dirname "$0")/lib.sh"

ctl=$RL_DBG/control
# Scaled by RL_BAD_WRITES; about 440 systematic cases plus random ones.
count=${RL_BAD_WRITES:-3000}
seed=${RL_SEED:-$(date +%s)}
diag "seed $seed (RL_SEED=$seed reproduces the random cases)"

# Each probe's symbol and state (armed, waiting, unused, failed).
probe_states() { sed -E 's/^(symbol=[^ ]+) .*(state=[a-z]+).*/\1 \2/' "$RL_DBG/probes" | sort; }

t_ok "insmod succeeds" rl_load
states=$(probe_states)
t_ok "grace_ms=2000 is accepted" test "$(write_errno "$ctl" 'grace_ms=2000\n')" = OK
t_ok "audit_ms=250 is accepted" test "$(write_errno "$ctl" 'audit_ms=250\n')" = OK
t_ok "modules=loop,ext4 is accepted" test "$(write_errno "$ctl" 'modules=loop,ext4\n')" = OK
before=$(cat "$ctl")
diag "settings: $(echo $before)"

start=$(date +%s)
out=$(rlsys ctlfuzz "$ctl" "$count" "$seed")
secs=$(($(date +%s) - start))
grep '^#' <<<"$out"
total=0
while read -r _ cat tried einval unchanged; do
	tried=${tried#tried=} einval=${einval#einval=} unchanged=${unchanged#unchanged=}
	total=$((total + tried))
	t_ok "$cat: all $tried writes refused with EINVAL" test "$einval" = "$tried"
	t_ok "$cat: the settings read back unchanged after each" test "$unchanged" = "$tried"
done < <(grep '^cat ' <<<"$out")
diag "bad input: $total malformed control writes in ${secs}s"
t_ok "some thousands of writes were tried" test "$total" -ge $((count / 2))
t_ok "the settings are still those written before" test "$(cat "$ctl")" = "$before"
t_ok "a valid write is still accepted afterwards" test "$(write_errno "$ctl" 'grace_ms=3000')" = OK
t_ok "and shows" grep -qx 'grace_ms=3000' "$ctl"
t_ok "every file still reads" bash -c "cat $RL_DBG/* >/dev/null"
t_ok "rmmod succeeds" rl_unload

# Bad module parameters: each load is refused, explained in dmesg, and
# leaves no module, directory or probe behind.
kprobes_before=$(sort /sys/kernel/debug/kprobes/list 2>/dev/null)
long=$(head -c 600 /dev/zero | tr '\0' a)
huge=$(head -c 3000 /dev/zero | tr '\0' b)
nine=a,b,c,d,e,f,g,h,i
# (insmod joins its arguments with spaces and the kernel splits them there,
# so a name with white space in it is not one value: none is tried.)
bad_params=("extra_probes=$long" "extra_probes=$huge" "extra_probes=$nine" "extra_probes=a,,b"
	"extra_probes=," "extra_probes=user_statfs," "extra_probes=bad;name" "extra_probes=../x"
	"extra_probes=$(printf 'a\x01b')" "extra_probes=sym\$" "extra_probes=$(printf '\xff\xfe')"
	"extra_probes=a/b" "extra_probes=-")
i=0
for p in "${bad_params[@]}"; do
	i=$((i + 1))
	shown=${p:0:40}
	[ ${#p} -gt 40 ] && shown="$shown... (${#p} bytes)"
	shown=$(printf '%q' "$shown")
	since=$(dmesg_mark)
	t_ok "bad parameter $i ($shown) is refused" bash -c '! insmod "$RL_KO" "$1" 2>/dev/null' _ "$p"
	t_ok "bad parameter $i leaves no module and no directory" \
		bash -c "[ ! -e /sys/module/refledger ] && [ ! -e $RL_DBG ]"
	t_ok "bad parameter $i is explained in dmesg" \
		bash -c "dmesg_since $since | grep -q 'extra_probes'"
done
t_ok "no probe is left registered" test "$(sort /sys/kernel/debug/kprobes/list 2>/dev/null)" = "$kprobes_before"
t_ok "a plain load works afterwards" rl_load
t_ok "with every probe in the state it had at the first load" test "$(probe_states)" = "$states"
t_ok "rmmod succeeds" rl_unload

# The fixtures' ctl files (write-only, `verb name` commands): junk is refused.
fixture_fuzz() {
	local name=$1 ko=$2 ctlf=$3 res
	if ! insmod "$ko"; then
		t_ok "insmod $name" false
		return
	fi
	res=$(rlsys fixfuzz "$ctlf" 500 "$seed")
	grep '^#' <<<"$res" | head -n 10
	res=$(tail -n1 <<<"$res")
	diag "$name ctl: $res"
	read -r tried einval other ok <<<"$(sed 's/[a-z]*=//g' <<<"$res")"
	t_ok "$name ctl refuses all $tried malformed writes with EINVAL" \
		test "$einval:$other:$ok" = "$tried:0:0"
	t_ok "rmmod $name" rmmod "$name"
}
fixture_fuzz leakyfs "$RL_FIX/leakyfs/leakyfs.ko" /sys/kernel/debug/leakyfs/ctl
insmod "$RL_FIX/swapblk/swapblk.ko"
fixture_fuzz swaptrace "$RL_FIX/swapblk/swaptrace.ko" /sys/kernel/debug/swaptrace/ctl
rmmod swapblk
t_done
