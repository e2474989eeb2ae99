#!/usr/bin/env python3
"""Instructions per operation, from the tbcount plugin's dumps.

    scripts/profile.py PROFILE_DIR MODULE_KO

PROFILE_DIR holds the plugin's dumps (tb.N: "address instructions runs"
per translation block), windows.txt ("window config workload ops", from
tests/bench-profile.sh) and kallsyms.CONFIG, the guest's symbols with each
configuration loaded.  MODULE_KO is the refledger.ko that ran, read for
the kernel functions it calls.  Prints, per workload, the kernel
instructions per operation for each configuration, what the probes (floor)
and refledger add, and where refledger's part goes.
"""
import bisect
import collections
import os
import re
import subprocess
import sys

# The kprobe, ftrace, rethook and tracepoint code a probe hit runs before
# and after its handler: the floor's cost.
MACHINERY = re.compile(r'kprobe|ftrace|rethook|traceiter|__probestub')
# Kernel functions refledger reaches through the ones it calls by name: the
# clocksource behind ktime_get, the spinlock behind the kernel crate's
# SpinLock, and the unwinder's internals.
CALLEES = {
    'ktime_get': ['read_tsc'],
    'ktime_get_mono_fast_ns': ['read_tsc'],
    'rust_helper_spin_lock': ['_raw_spin_lock'],
    'rust_helper_spin_unlock': ['_raw_spin_unlock'],
    'copy_from_kernel_nofault': ['copy_from_kernel_nofault_allowed'],
}
# Left out of refledger's calls: the workloads use them far more than it
# does (its one hot use is a 161-byte memset per new superblock record), so
# their difference between boots is noise, not refledger.
SHARED = {'memset', 'memcpy', 'memmove'}
UNWINDER = re.compile(r'unwind|orc_|deref_stack_reg|stack_access_ok|get_stack_info|in_task_stack')
# What the bpftrace peer runs besides the machinery and its programs (kallsyms
# names those, in module [bpf], while they are loaded): the BPF glue, its
# maps and helpers, and the stack walk behind its stacks.  None of these is
# run by the workloads themselves, so the peer's part of them is exact where
# a window's total is not.  memset, memcmp and memcpy are left out, as for
# refledger, though the peer's hash maps call them (on loop open/close, a
# third of what it adds): so this part is a lower bound of the peer's cost.
PEER = re.compile(r'bpf|htab|stack_map|callchain|pcpu_freelist|perf_|'
                  r'ktime_get_mono_fast_ns|copy_from_kernel_nofault|strncpy_from_kernel')
# Each workload's function entered once per operation: a window whose count
# of it is not about its number of operations did not line up.
MARKER = {
    'mount_tmpfs': 'path_umount',
    'mount_ext4': 'path_umount',
    'mount_xfs': 'path_umount',
    'mount_btrfs': 'path_umount',
    'zfs_churn': 'path_umount',
    'bdev_openclose': 'bdev_open',
    'module_getput': 'bdev_open',
}


class Symbols:
    def __init__(self, path):
        syms = []
        for line in open(path):
            f = line.split()
            if len(f) < 3 or f[1] not in 'tTwW':
                continue
            addr = int(f[0], 16)
            if addr:
                syms.append((addr, f[2], f[3].strip('[]') if len(f) > 3 else ''))
        syms.sort()
        self.syms = syms
        self.addrs = [s[0] for s in syms]
        self.by_name = {s[1]: s[0] for s in syms}

    def find(self, addr):
        i = bisect.bisect_right(self.addrs, addr) - 1
        return self.syms[i] if i >= 0 else (0, '?', '')


def demangle(name):
    """A Rust v0 symbol's path without its crate, as module::item."""
    if not name.startswith('_R'):
        return name
    tokens, i = [], 2
    while i < len(name):
        c = name[i]
        if c.isdigit():
            j = i
            while j < len(name) and name[j].isdigit():
                j += 1
            n = int(name[i:j])
            if j < len(name) and name[j] == '_':
                j += 1
            tokens.append(name[j:j + n])
            i = j + n
        elif c in 'Bs':
            # A back-reference or a disambiguator: base-62 digits up to '_'.
            i = name.find('_', i) + 1 or len(name)
        else:
            i += 1
    return '::'.join(tokens[1:]) or name


def window(prof, idx, syms, ops):
    """Per-symbol instructions per operation, the total, and the marker's
    entry count per operation."""
    per = collections.Counter()
    total = 0
    runs_at = collections.Counter()
    for line in open(os.path.join(prof, 'tb.%d' % idx)):
        va, n, runs = line.split()
        va, n, runs = int(va, 16), int(n), int(runs)
        start, name, mod = syms.find(va)
        per[(name, mod)] += n * runs
        total += n * runs
        runs_at[va] += runs
    return {k: v / ops for k, v in per.items()}, total / ops, runs_at


def imports(ko):
    """The kernel functions the module calls by name, and what they call."""
    out = subprocess.run(['nm', '-u', ko], capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    if any('SpinLockBackend' in n for n in names):
        names |= {'rust_helper_spin_lock', 'rust_helper_spin_unlock'}
    for n in list(names):
        names |= set(CALLEES.get(n, []))
    return names


def main():
    prof = sys.argv[1]
    called = imports(sys.argv[2])
    wins = {}
    names = []
    reads = []
    for line in open(os.path.join(prof, 'windows.txt')):
        idx, cfg, name, ops = line.split()
        if cfg == 'read':
            reads.append((int(idx), name, int(ops)))
            continue
        wins[(cfg, name)] = (int(idx), int(ops))
        if name not in names:
            names.append(name)
    syms = {cfg: Symbols(os.path.join(prof, 'kallsyms.' + cfg))
            for cfg in ('none', 'floor', 'refledger', 'peer')
            if os.path.exists(os.path.join(prof, 'kallsyms.' + cfg))}
    data = {}
    for (cfg, name), (idx, ops) in wins.items():
        per, total, runs_at = window(prof, idx, syms[cfg], ops)
        marker = syms[cfg].by_name.get(MARKER[name])
        calls = runs_at.get(marker, 0) / ops
        if not 0.9 <= calls <= 1.5:
            print('# profile: window %d (%s %s) saw %s %.2f times per op; '
                  'the windows did not line up, no profile' % (idx, cfg, name, MARKER[name], calls))
            return 1
        data[(cfg, name)] = (per, total)

    def part(per, pick):
        return sum(v for k, v in per.items() if pick(k))

    own = lambda k: k[1] in ('refledger', 'nullprobe')
    mach = lambda k: not own(k) and MACHINERY.search(k[0]) is not None
    rest = lambda k: not own(k) and not mach(k)
    calls = lambda k: (rest(k) and k[0] not in SHARED
                       and (k[0] in called or UNWINDER.search(k[0]) is not None))
    peer_fn = lambda k: (k[1] == 'bpf' or mach(k) or UNWINDER.search(k[0]) is not None
                         or PEER.search(k[0]) is not None)
    # refledger's calls counted as the peer's are: only functions the
    # workload does not run itself (the unwinder, and any its unprobed
    # window never enters), so that a long workload's own use of mutex_lock
    # or strlen, which varies between boots by more than refledger's, does
    # not count either way.
    rl_fn_calls = lambda k, n_per: calls(k) and (UNWINDER.search(k[0]) is not None
                                                 or n_per.get(k, 0) == 0)

    print('# kernel instructions per operation, counted by QEMU (tests/bench/tbcount.c), one boot')
    print('# none/floor/refledger: all kernel instructions in the window, on both vCPUs, so they')
    print('#   include other activity (timer ticks, kworkers): differences between them are noisy')
    print('# floor_probes: the kprobe/ftrace/rethook/tracepoint code and nullprobe, over none')
    print('# rl_probes, rl_own, rl_calls: the same machinery with refledger loaded, its own')
    print('#   functions, and the kernel functions it calls (clock, lock, unwinder) net of the')
    print('#   floor; these count only those functions, so they are exact (memset and memcpy are')
    print("#   left out: the workloads' own use of them is far larger and varies)")
    print('# cost/floor = (rl_probes + rl_own + rl_calls) / floor_probes;')
    print('# fl_ratio, rl_ratio = none / (none + floor_probes or that cost);')
    print('# gap = fl_ratio - rl_ratio (goal <= 0.03)')
    print("# peer_add: the peer's window over none's, noisy where the workload's own")
    print("#   total is (xfs, btrfs, ZFS); rl/peer = refledger's cost over it (goal <= 0.20)")
    print("# peer_fn: the peer's functions over none's: the machinery, its BPF programs")
    print("#   and the BPF functions and unwinder they call (exact, like rl_calls: a lower")
    print("#   bound of what it adds); '-' where bpftrace did not run")
    print("# rl_fn: refledger's cost counted the same way: rl_probes, rl_own and of its calls")
    print("#   only the unwinder and functions the unprobed window never runs (a lower bound,")
    print("#   exact where rl_calls is noise); rl/peer_fn = rl_fn / peer_fn")
    print('%-16s %8s %8s %9s | %12s | %9s %8s %8s | %10s %8s %8s %6s | %8s %7s | %8s %8s %10s' % (
        'workload', 'none', 'floor', 'refledger', 'floor_probes',
        'rl_probes', 'rl_own', 'rl_calls', 'cost/floor', 'fl_ratio', 'rl_ratio', 'gap',
        'peer_add', 'rl/peer', 'peer_fn', 'rl_fn', 'rl/peer_fn'))
    for name in names:
        n_per, n_tot = data[('none', name)]
        f_per, f_tot = data[('floor', name)]
        r_per, r_tot = data[('refledger', name)]
        f_probes = part(f_per, mach) + part(f_per, own) - part(n_per, mach)
        r_probes = part(r_per, mach) - part(n_per, mach)
        r_own = part(r_per, own)
        r_calls = part(r_per, calls) - part(f_per, calls)
        cost = r_probes + r_own + r_calls
        fn_calls = lambda k: rl_fn_calls(k, n_per)
        rl_fn = r_probes + r_own + part(r_per, fn_calls) - part(f_per, fn_calls)
        fl_ratio, rl_ratio = n_tot / (n_tot + f_probes), n_tot / (n_tot + cost)
        peer_add, rl_peer, p_fn_s, rl_peer_fn = '-', '-', '-', '-'
        if ('peer', name) in data:
            p_per, p_tot = data[('peer', name)]
            p_add = p_tot - n_tot
            peer_add = '%.0f' % p_add
            rl_peer = '%.3f' % (cost / p_add) if p_add > 0 else '-'
            p_fn = part(p_per, peer_fn) - part(n_per, peer_fn)
            p_fn_s = '%.0f' % p_fn
            rl_peer_fn = '%.3f' % (rl_fn / p_fn) if p_fn > 0 else '-'
        print('%-16s %8.0f %8.0f %9.0f | %12.0f | %9.0f %8.0f %8.0f | %10.2f %8.3f %8.3f %6.3f | %8s %7s | %8s %8.0f %10s' % (
            name, n_tot, f_tot, r_tot, f_probes, r_probes, r_own, r_calls,
            cost / f_probes if f_probes > 0 else float('nan'), fl_ratio, rl_ratio,
            fl_ratio - rl_ratio, peer_add, rl_peer, p_fn_s, rl_fn, rl_peer_fn))
    def biggest(pairs):
        """'name count, ...' for the (count, symbol) pairs above 2% of their sum."""
        pairs = sorted(pairs, reverse=True)
        total = sum(v for v, _ in pairs)
        return ', '.join('%s %.0f' % (demangle(s), v) for v, s in pairs if v >= 0.02 * total)

    print()
    print("# where the floor's instructions go, per operation (functions above 2%): the")
    print('#   the ftrace trampoline and kprobe handler run on every probe hit, rethook on every')
    print('#   kretprobe call (a node taken at entry, the trampoline at return)')
    for name in names:
        n_per, _ = data[('none', name)]
        f_per, _ = data[('floor', name)]
        print('%-16s floor: %s' % (name, biggest(
            (f_per.get(k, 0) - n_per.get(k, 0), k[0])
            for k in set(f_per) | set(n_per) if own(k) or mach(k))))
    print()
    print("# where refledger's own instructions go, per operation (functions above 2%)")
    for name in names:
        r_per, _ = data[('refledger', name)]
        f_per, _ = data[('floor', name)]
        print('%-16s own: %s' % (name, biggest((v, k[0]) for k, v in r_per.items() if own(k))))
        keys = set(r_per) | set(f_per)
        net = sorted(((r_per.get(k, 0) - f_per.get(k, 0), k[0]) for k in keys if calls(k)),
                     reverse=True)
        shown = ', '.join('%s %+.0f' % (demangle(s), v) for v, s in net[:6] if v >= 5)
        print('%-16s calls: %s' % ('', shown))
    if any(cfg == 'peer' for cfg, _ in data):
        print()
        print("# where the peer's instructions go, per operation (its functions above 2%)")
        for name in names:
            if ('peer', name) not in data:
                continue
            p_per, _ = data[('peer', name)]
            n_per, _ = data[('none', name)]
            print('%-16s peer: %s' % (name, biggest(
                (p_per.get(k, 0) - n_per.get(k, 0), k[0])
                for k in set(p_per) | set(n_per) if peer_fn(k))))
    if reads:
        rsyms = Symbols(os.path.join(prof, 'kallsyms.read'))
        print()
        print('# a read of superblocks: kernel instructions per read, refledger loaded; its own')
        print('#   functions, and the functions above 2% of the window')
        for idx, name, ops in reads:
            per, total, _ = window(prof, idx, rsyms, ops)
            print('%-24s total %.0f (%.1f ms at 4 ns), refledger %.0f' % (
                name, total, total * 4e-6, part(per, own)))
            print('%-24s top: %s' % ('', biggest((v, k[0]) for k, v in per.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
