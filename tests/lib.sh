# Shared helpers for the guest tests; sourced by each tests/t*.sh.
#
# A test prints one KTAP result line per assertion ("ok N description" or
# "not ok N description"), diagnostics as "# ...", and its plan at the end.
# Its exit status is 0 when every assertion held, 4 when it skipped.

RL_TOP=${RL_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RL_KO=${RL_KO:-$RL_TOP/refledger.ko}
RL_DBG=/sys/kernel/debug/refledger
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
