# Shared settings for refledger's scripts; sourced, not run.
RL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/refledger"
RL_RUST=1.95.0
RL_BINDGEN=0.73.2
RL_VNG=1.42
mkdir -p "$RL_CACHE"

# rl_must_build NAME DIR: whether the cached artefact DIR still has to be
# built.  A build counts as done only once DIR/.complete exists, written after
# it succeeded; if it does not, this waits for NAME's build lock (held on fd
# 9 until the caller exits or takes another) and looks again, so concurrent
# runs build once and an interrupted build is never taken for a good one.
rl_must_build() {
	[ -e "$2/.complete" ] && return 1
	exec 9>"$RL_CACHE/$1.lock"
	echo "refledger: waiting for the $1 build lock" >&2
	flock 9
	[ ! -e "$2/.complete" ]
}
# The pinned toolchain (rustup's, and bindgen-cli from cargo) is for our own
# test kernel, which it builds; a user's KDIR gets the user's PATH and
# toolchain as they are: the module must be built by that kernel's own rustc
# (build.sh checks), and this one would shadow a distribution's.  Commands
# that make check runs for our kernel inherit this from it.
if [ -z "${KDIR:-}" ]; then
	export PATH="$HOME/.cargo/bin:$PATH"
	# make -C $KDIR runs outside this repo, where rust-toolchain.toml
	# does not apply.
	export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-$RL_RUST}"
fi
# virtme-ng's venv; not in the stock kernel's build root (scripts/stock.sh),
# which sees the cache but not the host's Python that the venv links to.
[ -x "$RL_CACHE/venv/bin/python3" ] && PATH="$RL_CACHE/venv/bin:$PATH"
# Debian's stock kernel (scripts/stock.sh): trixie-backports' 7.2 image, the
# rustc that built it (its CONFIG_RUSTC_VERSION_TEXT; from trixie, at
# whatever Debian revision it has), and OpenZFS 2.4.4.
RL_STOCK_REL=7.2.12+deb13-amd64
RL_STOCK_VER=7.2.12-1~bpo13+1
RL_STOCK_RUSTC=1.85.1
RL_STOCK_ZFS=2.4.4-1~bpo13+1
