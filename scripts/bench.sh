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
cat "$out/results.txt"
echo "refledger: results in $out/results.txt"
