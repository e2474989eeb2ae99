#!/usr/bin/env bash
# `make demo`: installs what is missing, builds the test kernel and the
# module, boots the kernel and shows refledger at work: the ledgers moving
# under ordinary mounts, then OpenZFS #18309's leak (reproduced by the
# leakyfs fixture) flagged with its evidence, then repaired.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"
cd "$top"

KDIR=$("$here/setup.sh")
export KDIR
out="$top/out/demo"
rm -rf "$out"
mkdir -p "$out"
"$here/vm.sh" "$KDIR" "$out" 900 "$top/tests/demo-guest.sh" >"$out/vm.log" 2>&1 || {
	tail -n 40 "$out/vm.log"
	exit 1
}
# The guest's narration, without the kernel's console messages.
grep -vE '^\[ *[0-9]+\.[0-9]+\]' "$out/vm.log" | grep -v '^refledger: booting'
