#!/usr/bin/env bash
# Installs everything refledger needs on a Debian 12 host: the kernel source,
# the LLVM toolchain, the pinned Rust toolchain, bindgen-cli, QEMU and
# virtme-ng.  Idempotent: a stamp keyed by this script's contents skips the
# work on a machine that already ran it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

stamp="$RL_CACHE/deps-$(sha256sum "$0" | cut -c1-16).stamp"
if [ -e "$stamp" ] && command -v bindgen >/dev/null && command -v vng >/dev/null \
   && ls /usr/src/linux-source-6.12.tar.* >/dev/null 2>&1; then
	exit 0
fi

echo "refledger: installing dependencies (once per machine)"
if [ "$(id -u)" != 0 ]; then
	echo "refledger: scripts/deps.sh must run as root to install packages" >&2
	exit 1
fi

# linux-source-6.12 comes from bookworm-security/backports; OpenZFS from
# bookworm-backports contrib.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	cat > /etc/apt/sources.list.d/refledger-bpo.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
elif ! grep -rqsE 'bookworm-backports.*contrib|Components:.*contrib' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "refledger: warning: bookworm-backports is configured without contrib; OpenZFS needs it" >&2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	linux-source-6.12 build-essential bc bison flex cpio kmod xz-utils \
	libelf-dev libssl-dev python3 python3-venv \
	clang lld llvm libclang-dev \
	udev busybox-static \
	e2fsprogs xfsprogs btrfs-progs util-linux procps psmisc \
	bpftrace \
	>/dev/null
# QEMU from backports: this machine kind ships qemu-utils 10 from there, and
# bookworm's qemu-system 7.2 conflicts with it.
apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null

# The Rust toolchain pinned in rust-toolchain.toml.
rustup toolchain install "$RL_RUST" --profile minimal -c rust-src -c rustfmt -c clippy >/dev/null

# bindgen-cli, pinned, built with the pinned toolchain.
if ! bindgen --version 2>/dev/null | grep -q " $RL_BINDGEN\$"; then
	cargo +"$RL_RUST" install --locked --quiet bindgen-cli --version "$RL_BINDGEN"
fi

# virtme-ng in its own venv under the cache; scripts/env.sh puts it on PATH.
if ! "$RL_CACHE/venv/bin/vng" --version >/dev/null 2>&1; then
	python3 -m venv "$RL_CACHE/venv"
	"$RL_CACHE/venv/bin/pip" install -q "virtme-ng==$RL_VNG"
fi

touch "$stamp"
echo "refledger: dependencies installed"
