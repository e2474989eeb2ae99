# Shared settings for refledger's scripts; sourced, not run.
RL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/refledger"
RL_RUST=1.95.0
RL_BINDGEN=0.73.2
RL_VNG=1.42
mkdir -p "$RL_CACHE"
export PATH="$RL_CACHE/venv/bin:$HOME/.cargo/bin:$PATH"
# make -C $KDIR runs outside this repo, where rust-toolchain.toml does not apply.
export RUSTUP_TOOLCHAIN="$RL_RUST"
