#!/usr/bin/env bash
# `make bench`: what refledger costs the kernel it watches, measured in the
# test VM as ratios within one boot (see tests/bench-guest.sh).  Prints a
# table and writes it, with the raw numbers, to out/bench/results.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"
cd "$top"

KDIR=$("$here/setup.sh")
export KDIR
out="$top/out/bench"
rm -rf "$out"
mkdir -p "$out"
gcc -O2 -Wall -o "$out/churn" tests/bench/churn.c
# Under TCG the guest's clock counts instructions (see vm.sh): without it
# the host's noise moved the same measurement by half from round to round.
RL_ICOUNT=1 "$here/vm.sh" "$KDIR" "$out" 3000 env ROUNDS="${ROUNDS:-9}" "$top/tests/bench-guest.sh" "$out" >"$out/vm.log" 2>&1 || {
	tail -n 40 "$out/vm.log"
	exit 1
}
how=$(sed -n 's/^refledger: booting .* with //p' "$out/vm.log" | head -n1)
case $how in
"tcg -icount") clock="guest time from the instruction count (QEMU TCG -icount, 4 ns per instruction)" ;;
kvm) clock="real time (KVM)" ;;
*) clock="real time ($how)" ;;
esac
sed -i "1a # clock: $clock" "$out/results.txt"

# The instruction profile: where the instructions go, counted exactly by a
# QEMU plugin (tests/bench/tbcount.c) in a second boot.  TCG only.
profile() {
	local prof=$out/profile trigger
	case $how in
	tcg*) ;;
	*)
		echo "# profile: not run: QEMU plugins need TCG, and this run used $how"
		return
		;;
	esac
	# The plugin marks windows when the kernel enters ksys_sync, at the
	# address System.map gives: KASLR would move it.
	trigger=$(awk '$3 == "ksys_sync" { print $1 }' "$KDIR/System.map" 2>/dev/null)
	if [ -z "$trigger" ] || grep -q '^CONFIG_RANDOMIZE_BASE=y' "$KDIR/.config"; then
		echo "# profile: not run: ksys_sync's address is not fixed in this kernel (System.map, KASLR)"
		return
	fi
	mkdir -p "$prof"
	cc -O2 -Wall -shared -fPIC -fvisibility=hidden -o "$prof/tbcount.so" tests/bench/tbcount.c
	if ! RL_ICOUNT=1 RL_QEMU_PLUGIN="$prof/tbcount.so,outfile=$prof/tb,trigger=$trigger" \
		"$here/vm.sh" "$KDIR" "$prof" 1800 "$top/tests/bench-profile.sh" "$prof" "$out/churn" \
		>"$prof/vm.log" 2>&1; then
		echo "# profile: the VM failed; see $prof/vm.log"
		return
	fi
	python3 "$here/profile.py" "$prof" "$top/refledger.ko" || echo "# profile: scripts/profile.py failed"
}
# The profile goes before the raw measurements, which end the file.
# PROFILE=0 skips it.
if [ "${PROFILE:-1}" = 1 ]; then
	echo "refledger: instruction profile (QEMU plugin)" >&2
	profile >"$out/profile.txt"
	awk -v prof="$out/profile.txt" '
		/^# raw measurements/ { while ((getline l < prof) > 0) print l; print "" }
		{ print }' "$out/results.txt" >"$out/results.tmp"
	mv "$out/results.tmp" "$out/results.txt"
fi
cat "$out/results.txt"
echo "refledger: results in $out/results.txt"
