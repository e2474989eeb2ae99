#!/usr/bin/env bash
# The set-up `make demo` and `make bench` share: installs what is missing,
# builds (or finds) the fast flavour of the test kernel (without the debug
# kernel's checkers, which `make check` uses; see qemu/fast.config), builds
# refledger.ko and the fixtures, and prints the kernel's directory.  KDIR
# overrides the cached kernel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

"$here/deps.sh" >&2
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$here/kernel.sh" fast)
fi
export KDIR
"$here/build.sh" module >&2
"$here/build.sh" fixtures >&2
echo "$KDIR"
