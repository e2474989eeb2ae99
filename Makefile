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
# kernel (Debian's headers get their missing Rust metadata made once, see
# scripts/rustmeta.sh); LLVM=1 is passed when that kernel was built with
# clang, unless you set LLVM yourself.

SHELL := /bin/bash
export KDIR
ifneq ($(origin LLVM),undefined)
export LLVM
endif

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
