# SPDX-License-Identifier: GPL-2.0
#
# refledger's front door.  The kbuild side of the module is in Kbuild; this
# file only dispatches to scripts/.
#
#   make            build refledger.ko against KDIR (default: the cached test
#                   kernel, built on first use)
#   make check      install, build, boot the test kernel, run all tests
#   make demo       install, build, boot, show the ledgers moving
#   make clippy     build with CLIPPY=1; fails on any warning
#   make fmtcheck   rustfmt --check with the kernel's .rustfmt.toml
#   make fmt        rustfmt in place
#   make bench      benchmarks in the VM (see README)
#   make clean
#
# KDIR=/path/to/your/kernel/build builds against your own Rust-enabled
# kernel; LLVM=1 is passed unless you set LLVM= (empty) for a GCC-built one.

SHELL := /bin/bash
# LLVM=1 unless the user says otherwise (LLVM= for a GCC-built kernel).
LLVM ?= 1
export KDIR LLVM

.PHONY: all modules check demo clippy fmtcheck fmt bench clean
all modules:
	@scripts/build.sh module
clippy:
	@scripts/build.sh clippy
fmtcheck:
	@scripts/build.sh fmtcheck
fmt:
	@scripts/build.sh fmt
check:
	@scripts/check.sh
demo:
	@scripts/demo.sh
bench:
	@scripts/bench.sh
clean:
	@scripts/build.sh clean
