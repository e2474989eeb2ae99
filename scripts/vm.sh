#!/usr/bin/env bash
# Runs a command as root in the test kernel, under virtme-ng and QEMU.
#
#   scripts/vm.sh KDIR OUTDIR TIMEOUT COMMAND...
#
# The guest sees the host's root read-only over 9p (with tmpfs overlays on
# /tmp, /etc, /var and friends) and OUTDIR read-write.  The console (kernel
# messages included) goes to stdout and to OUTDIR/console.log.  The exit
# status is the command's; 124 if the VM did not finish within TIMEOUT
# seconds.
#
# KVM is used when it works here and TCG otherwise: detected, not assumed.
# RL_ACCEL=kvm|tcg overrides the detection.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

kdir=$1 out=$2 limit=$3
shift 3
mkdir -p "$out"

vng_base=(vng --run "$kdir" --force-9p --cpus "${RL_VM_CPUS:-2}" --memory 2G)

# Some hosts expose a /dev/kvm that cannot boot normal guests (a PVM
# hypervisor: QEMU aborts on `-cpu host`, other models hang early).  Try a
# short boot before trusting it, and remember the answer for this kernel.
detect_accel() {
	local memo
	memo="$RL_CACHE/accel-$(basename "$kdir")-$(echo "$kdir" | sha256sum | cut -c1-8)"
	if [ -e "$memo" ]; then
		cat "$memo"
		return
	fi
	local accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
		if timeout 60 "${vng_base[@]}" --exec true </dev/null >/dev/null 2>&1; then
			accel=kvm
		fi
	fi
	echo "$accel" >"$memo"
	echo "$accel"
}

accel=${RL_ACCEL:-$(detect_accel)}
extra=()
[ "$accel" = tcg ] && extra+=(--disable-kvm)
# RL_ICOUNT=1 (make bench): under TCG, run the guest's clock from the
# instruction count (QEMU -icount: 4 ns of guest time per instruction,
# idle time skipped), so that timings inside the guest count instructions
# and the host's load cannot move them.  Under KVM the clock is real.
how=$accel
qopts=
if [ "$accel" = tcg ] && [ "${RL_ICOUNT:-0}" = 1 ]; then
	qopts="-icount shift=2,sleep=off"
	how="tcg -icount"
fi
# RL_QEMU_PLUGIN=SO,ARGS (make bench's instruction profile): a TCG plugin,
# which only TCG can run.
if [ -n "${RL_QEMU_PLUGIN:-}" ]; then
	if [ "$accel" != tcg ]; then
		echo "refledger: RL_QEMU_PLUGIN needs TCG, not $accel" >&2
		exit 2
	fi
	qopts="$qopts -plugin $RL_QEMU_PLUGIN"
	how="$how, plugin"
fi
[ -n "$qopts" ] && extra+=(--qemu-opts="$qopts")
# RL_APPEND="OPTS": more kernel boot options (make bench: nokaslr, so that
# System.map's addresses are the running kernel's).
[ -n "${RL_APPEND:-}" ] && extra+=(--append="$RL_APPEND")
echo "refledger: booting $(basename "$kdir") with $how" >&2

# QEMU truncates a stdout that is redirected to a file, so the console goes
# through tee.  vng can hang silently when a boot fails, hence the timeout.
#
# QEMU 10 under TCG has been seen to abort while probing PCI at boot
# ("msix_table_mmio_write: Assertion ... failed"), before the guest runs
# anything: such a boot is retried once.
for attempt in 1 2; do
	set +e
	timeout --kill-after=10 "$limit" "${vng_base[@]}" "${extra[@]}" --verbose \
		--rwdir="$out" --exec "$*" </dev/null 2>&1 | tee "$out/console.log"
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" != 0 ] && grep -q '^qemu-system-x86_64: .*Assertion .* failed' "$out/console.log" \
	   && ! grep -q 'Run .* as init process' "$out/console.log"; then
		echo "refledger: QEMU aborted during boot (attempt $attempt)" >&2
		continue
	fi
	break
done
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "refledger: the VM did not finish within ${limit}s" >&2
	rc=124
fi
exit "$rc"
