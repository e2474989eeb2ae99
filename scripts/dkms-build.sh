#!/usr/bin/env bash
# Builds refledger with DKMS from this tree's dkms.conf, as `dkms install`
# would on a kernel upgrade, and checks that it produced refledger.ko for
# that kernel.  Run in the stock kernel's build root (scripts/stock.sh run),
# where DKMS and the kernel's headers are installed.
#
#   scripts/dkms-build.sh KERNELRELEASE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
rel=$1
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
src=/usr/src/refledger-$ver

# DKMS builds from /usr/src/<name>-<version>: the files a release would ship.
dkms remove -m refledger -v "$ver" --all >/dev/null 2>&1 || true
rm -rf "$src"
mkdir -p "$src"
cp -a "$top"/{Makefile,Kbuild,dkms.conf,src,scripts} "$src/"
rm -f "$src"/src/*.o "$src"/src/.*.cmd "$src"/src/bindings_generated.rs
dkms add -m refledger -v "$ver"
rc=0
dkms build -m refledger -v "$ver" -k "$rel" || rc=$?
log=/var/lib/dkms/refledger/$ver/build/make.log
if [ "$rc" != 0 ]; then
	tail -n 30 "$log" >&2 || true
	echo "refledger: dkms build failed ($rc)" >&2
elif ! modinfo -F vermagic "/var/lib/dkms/refledger/$ver/$rel/x86_64/module/refledger.ko"* | grep -q "^$rel "; then
	echo "refledger: dkms built no refledger.ko for $rel" >&2
	rc=1
else
	echo "refledger: dkms built refledger.ko for $rel"
fi
dkms remove -m refledger -v "$ver" --all >/dev/null 2>&1 || true
rm -rf "$src"
exit "$rc"
