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
"$here/vm.sh" "$KDIR" "$out" 3000 "$top/tests/bench-guest.sh" "$out" >"$out/vm.log" 2>&1 || {
	tail -n 40 "$out/vm.log"
	exit 1
}
cat "$out/results.txt"
echo "refledger: results in $out/results.txt"
