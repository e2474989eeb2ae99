// SPDX-License-Identifier: GPL-2.0

//! The `holders` file: who keeps a superblock, and what is left unexplained.
//!
//! A write names the superblock: a path (the filesystem mounted there), a
//! `dev=MAJOR:MINOR`, or an `sb=` id as the other files print it
//! (`HASH.GEN`; the hash alone names whatever superblock has that address).  A read
//! walks the kernel's objects for it (`src/holders.c`, which says which
//! locks it takes) and prints one line per holder:
//!
//! - `mount`: each struct mount of it, with its namespace and references;
//! - `holder kind=cwd|root|exe|fd|mmap`: tasks, with pid, comm, fd and the
//!   task's mount namespace;
//! - `holder kind=nsfs|nsfs_mount`: an fd, or a bind mount of a namespace
//!   file, that keeps a mount namespace it is mounted in;
//! - `holder kind=fs_context`: an `fsopen(2)` context that made it;
//! - `holder kind=swap|loop`: a swap area or loop device backed by a file
//!   on it;
//! - `holder kind=scm_rights`: a file on it in flight in a unix socket
//!   (sent with `SCM_RIGHTS`, not yet received), with the pid, comm and fd
//!   of a task that has the receiving socket.
//!
//! and the balance of `s_active`: each struct mount, each fs context and a
//! freeze hold one reference; what no holder explains is `unexplained`.  A
//! superblock with `unexplained` > 0 and no mounts is the OpenZFS #18309
//! signature: a reference that kernel code took and never gave back.

use crate::{
    join::ledger,
    wrappers::{
        bindings,
        debugfs::{seq_print, Line, SeqFile, Show, Store},
    },
};
use kernel::{new_mutex, prelude::*, sync::Mutex};

/// The most holder lines one read prints; more are counted as cut.
const MAX_HOLDERS: usize = 1024;

/// The superblock a read reports on: how it was named and the key.
#[derive(Clone, Copy)]
struct Target {
    by: u32,
    key: u64,
    /// For `sb=HASH.GEN`: the record generation the superblock must have.
    gen: Option<u32>,
}

/// The `holders` file.
#[pin_data]
pub(crate) struct HoldersFile {
    #[pin]
    target: Mutex<Option<Target>>,
}

impl HoldersFile {
    /// A file with no target yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            target <- new_mutex!(None, "refledger:holders"),
        })
    }
}

/// Parses `MAJOR:MINOR` into a kernel `dev_t` (MINORBITS is 20).
fn parse_dev(s: &str) -> Result<u64> {
    let (ma, mi) = s.split_once(':').ok_or(EINVAL)?;
    let ma: u32 = ma.parse().map_err(|_| EINVAL)?;
    let mi: u32 = mi.parse().map_err(|_| EINVAL)?;
    if ma >= 1 << 12 || mi >= 1 << 20 {
        return Err(EINVAL);
    }
    Ok(u64::from(ma << 20 | mi))
}

/// Parses an id as the files print it: 16 hexadecimal digits (the `%p`
/// hash), then optionally `.` and the record's generation.
fn parse_id(s: &str) -> Result<(u64, Option<u32>)> {
    let (hash, gen) = match s.split_once('.') {
        Some((h, g)) => (h, Some(g.parse::<u32>().map_err(|_| EINVAL)?)),
        None => (s, None),
    };
    if hash.len() != 16 || gen == Some(0) {
        return Err(EINVAL);
    }
    Ok((u64::from_str_radix(hash, 16).map_err(|_| EINVAL)?, gen))
}

/// What a write names, parsed; a path is looked up.
fn parse(input: &[u8]) -> Result<Target> {
    let s = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
    if let Some(v) = s.strip_prefix("dev=") {
        return Ok(Target {
            by: bindings::rl_target_by_RL_BY_DEV,
            key: parse_dev(v)?,
            gen: None,
        });
    }
    if let Some(v) = s.strip_prefix("sb=") {
        let (key, gen) = parse_id(v)?;
        return Ok(Target {
            by: bindings::rl_target_by_RL_BY_HASH,
            key,
            gen,
        });
    }
    if !s.starts_with('/') || s.bytes().any(|c| c == 0) {
        return Err(EINVAL);
    }
    // A NUL-terminated copy; the write is at most `MAX_WRITE` bytes.
    let mut name = [0u8; crate::wrappers::debugfs::MAX_WRITE + 1];
    name[..s.len()].copy_from_slice(s.as_bytes());
    let mut sb: usize = 0;
    // SAFETY: `name` is NUL-terminated; `rl_sb_of_path` writes `sb` only.
    let err = unsafe { bindings::rl_sb_of_path(name.as_ptr().cast(), &raw mut sb) };
    if err != 0 {
        return Err(Error::from_errno(err));
    }
    Ok(Target {
        by: bindings::rl_target_by_RL_BY_PTR,
        key: sb as u64,
        gen: None,
    })
}

impl Store for HoldersFile {
    fn store(&self, input: &[u8]) -> Result {
        let t = parse(input).inspect_err(|_| {
            pr_info!("holders: rejected; expected a path, dev=<major>:<minor> or sb=<id>\n");
        })?;
        *self.target.lock() = Some(t);
        Ok(())
    }
}

impl Show for HoldersFile {
    fn size_hint(&self) -> usize {
        (MAX_HOLDERS + 4) * 256
    }

    fn show(&self, m: &SeqFile) -> Result {
        let Some(t) = *self.target.lock() else {
            seq_print!(
                m,
                "# no superblock chosen: write a path, dev=<major>:<minor> or sb=<id>\n"
            );
            return Ok(());
        };
        let l = ledger::get().ok_or(ENODEV)?;
        let h = Holders::find(l.first_fs_type(), t)?;
        let gen = if h.out.found != 0 {
            l.sb_gen(h.out.sb)
        } else {
            0
        };
        // `sb=HASH.GEN` names one superblock: another one at the same
        // address since is not it.
        if t.gen.is_some_and(|g| g != gen) {
            seq_print!(
                m,
                "# not found: that superblock is gone (another has its address now)\n"
            );
            return Ok(());
        }
        h.show_file(m, gen);
        Ok(())
    }
}

/// What one walk found.
pub(crate) struct Holders {
    out: bindings::rl_holders,
    h: KVVec<bindings::rl_holder>,
}

impl Holders {
    /// Walks for the holders of the superblock `t` names, from `first`, the
    /// first registered filesystem type.  Process context; may allocate.
    fn find(first: *mut bindings::file_system_type, t: Target) -> Result<Self> {
        let mut h = KVVec::with_capacity(MAX_HOLDERS, GFP_KERNEL)?;
        for _ in 0..MAX_HOLDERS {
            // Within the capacity: no allocation.
            h.push(bindings::rl_holder::default(), GFP_KERNEL)?;
        }
        let mut out = bindings::rl_holders {
            h: h.as_mut_ptr(),
            cap: MAX_HOLDERS as u32,
            ..Default::default()
        };
        // SAFETY: `first` is a registered type (sysfs, never unregistered);
        // `out.h` has room for `out.cap` holders and lives across the call.
        unsafe { bindings::rl_find_holders(first, t.by, t.key, &raw mut out) };
        Ok(Self { out, h })
    }

    /// Walks for the holders of the superblock at `sb`, if it is listed.
    pub(crate) fn of_sb(first: *mut bindings::file_system_type, sb: usize) -> Result<Self> {
        Self::find(
            first,
            Target {
                by: bindings::rl_target_by_RL_BY_PTR,
                key: sb as u64,
                gen: None,
            },
        )
    }

    /// Walks for the holders of the superblock whose record is `gen` at
    /// `sb`: `None` when the superblock there now is another one (the
    /// address was reused) or none is listed.
    pub(crate) fn of_record(l: &ledger::Ledger, sb: usize, gen: u32) -> Option<Self> {
        let h = Self::of_sb(l.first_fs_type(), sb).ok()?;
        (h.out.found != 0 && l.sb_gen(sb) == gen).then_some(h)
    }

    /// The references no holder explains, if the mounts could be counted.
    pub(crate) fn unexplained(&self) -> Option<i64> {
        let o = &self.out;
        if o.parts & bindings::RL_PART_MOUNTS == 0 {
            return None;
        }
        Some(
            i64::from(o.s_active)
                - i64::from(o.mounts)
                - i64::from(o.fs_contexts)
                - i64::from(o.frozen != 0),
        )
    }

    /// The `holders` file's text: the target, the balance, the holders and
    /// what the walk left out.
    fn show_file(&self, m: &SeqFile, gen: u32) {
        let o = &self.out;
        let mut line = Line::new();
        if o.found == 0 {
            seq_print!(
                m,
                "# not found: no such superblock is listed now (unmounted and freed?)\n"
            );
            return;
        }
        line.str("# target sb=")
            .hex16(o.hash)
            .str(".")
            .u64(gen.into())
            .str(" fstype=")
            .cstr(&o.fstype)
            .str(" s_id=")
            .cstr(&o.s_id)
            .str(" dev=")
            .dev(o.dev)
            .str(" s_active=")
            .i64(o.s_active.into())
            .end(m);
        self.show_lines(m, &mut line, "# ", "");
        self.footer(&mut line);
        line.end(m);
    }

    /// The balance line, after `balance_prefix`, then one line per holder,
    /// after `holder_prefix`: as the `holders` file and `leaks` show them.
    fn show_lines(&self, m: &SeqFile, line: &mut Line, balance_prefix: &str, holder_prefix: &str) {
        self.balance(line.str(balance_prefix));
        line.end(m);
        for h in self.holders() {
            line.str(holder_prefix);
            show_holder(line, h);
            line.end(m);
        }
    }

    /// Appends `balance s_active=N mounts=N ... unexplained=N`.
    fn balance(&self, line: &mut Line) {
        let o = &self.out;
        line.str("balance s_active=")
            .i64(o.s_active.into())
            .str(" mounts=")
            .u64(o.mounts.into())
            .str(" detached=")
            .u64(o.detached.into())
            .str(" fs_contexts=")
            .u64(o.fs_contexts.into())
            .str(" frozen=")
            .u64(u64::from(o.frozen != 0))
            .str(" unexplained=");
        match self.unexplained() {
            Some(u) => line.i64(u),
            None => line.str("?"),
        };
    }

    /// Appends the `# holders=N cut=N ...` footer: what the walk left out.
    fn footer(&self, line: &mut Line) {
        let o = &self.out;
        line.str("# holders=")
            .u64(o.n.into())
            .str(" cut=")
            .u64(o.cut)
            .str(" tasks=")
            .u64(o.tasks)
            .str(" budget_cut=")
            .u64(o.budget_cut)
            .str(" mm_busy=")
            .u64(o.mm_busy)
            .str(" scm_busy=")
            .u64(o.scm_busy)
            .str(" unavailable=");
        let mut none = true;
        for (bit, name) in [
            (bindings::RL_PART_MOUNTS, "mounts"),
            (bindings::RL_PART_TASKS, "tasks"),
            (bindings::RL_PART_SWAP, "swap"),
            (bindings::RL_PART_LOOP, "loop"),
            (bindings::RL_PART_FS_CONTEXT, "fs_context"),
            (bindings::RL_PART_SCM, "scm_rights"),
        ] {
            if o.parts & bit == 0 {
                line.str(if none { "" } else { "," }).str(name);
                none = false;
            }
        }
        if none {
            line.str("-");
        }
    }
}

/// One holder's line, without the newline.
pub(crate) fn show_holder(line: &mut Line, h: &bindings::rl_holder) {
    use bindings::*;
    if h.kind == rl_holder_kind_RL_H_MOUNT {
        line.str("mount mnt_id=")
            .u64(h.id)
            .str(" mntns=")
            .u64(h.mntns)
            .str(" where=")
            .str(if h.flags & RL_M_DETACHED != 0 {
                "detached"
            } else if h.flags & RL_M_ANON != 0 {
                "anonymous"
            } else if h.flags & RL_M_INTERNAL != 0 {
                "internal"
            } else if h.flags & RL_M_NO_TASKS != 0 {
                "namespace_without_tasks"
            } else {
                "namespace"
            })
            .str(" refs=")
            .u64(h.count)
            .str(" path=")
            .path(&h.path);
        return;
    }
    line.str("holder kind=").str(kind_name(h.kind));
    if h.pid != 0 {
        line.str(" pid=")
            .i64(h.pid.into())
            .str(" comm=")
            .cstr(&h.comm)
            .str(" mntns=")
            .u64(h.mntns);
    }
    if h.fd >= 0 {
        line.str(" fd=").i64(h.fd.into());
    }
    if h.kind == rl_holder_kind_RL_H_MMAP {
        line.str(" mappings=").u64(h.count);
    }
    if h.kind == rl_holder_kind_RL_H_NSFS_MOUNT {
        line.str(" mntns=").u64(h.mntns);
    }
    if h.kind == rl_holder_kind_RL_H_NSFS || h.kind == rl_holder_kind_RL_H_NSFS_MOUNT {
        line.str(" keeps_mntns=").u64(h.id);
    }
    if h.kind == rl_holder_kind_RL_H_LOOP {
        line.str(" loop=").u64(h.id);
    }
    if h.kind == rl_holder_kind_RL_H_SWAP {
        line.str(" swap_type=").u64(h.id);
    }
    if h.path[0] != 0 {
        line.str(" path=").path(&h.path);
    }
}

/// Whether holders explain every reference of the superblock at `sb`:
/// `unexplained` is 0 or less.  The audit asks before it flags one.
/// `None` when it is not listed or the mounts cannot be counted here.
pub(crate) fn explained(sb: usize) -> Option<bool> {
    let l = ledger::get()?;
    let h = Holders::of_sb(l.first_fs_type(), sb).ok()?;
    if h.out.found == 0 {
        return None;
    }
    Some(h.unexplained()? <= 0)
}

impl Holders {
    /// What the walk found besides the holders: the counts and balance.
    pub(crate) fn summary(&self) -> &bindings::rl_holders {
        &self.out
    }

    /// The holders found, in the order found.
    pub(crate) fn holders(&self) -> &[bindings::rl_holder] {
        &self.h[..self.out.n as usize]
    }

    /// Appends ` held_by=...`, naming the first holder found: a task first,
    /// since that is whom a user can act on; else a namespace kept by a
    /// file, a loop or swap device.
    pub(crate) fn held_by(&self, line: &mut Line) {
        if self.out.found == 0 {
            return;
        }
        let hs = self.holders();
        if let Some(h) = hs.iter().find(|h| h.pid != 0) {
            line.str(" held_by=");
            held_by_token(line, h);
        } else if let Some(h) = hs.iter().find(|h| {
            h.kind != bindings::rl_holder_kind_RL_H_MOUNT || h.flags & bindings::RL_M_NO_TASKS != 0
        }) {
            line.str(" held_by=").str(kind_name(h.kind));
            if h.kind == bindings::rl_holder_kind_RL_H_MOUNT {
                line.str(":mntns").u64(h.mntns);
            } else {
                line.str(":").u64(h.id);
            }
        }
    }

    /// Prints the balance and one line per holder, each indented by two
    /// spaces, as `leaks` shows them under a superblock.
    pub(crate) fn show_block(&self, m: &SeqFile) {
        let o = &self.out;
        if o.found == 0 {
            return;
        }
        let mut line = Line::new();
        self.show_lines(m, &mut line, "  ", "  ");
        if o.cut != 0 {
            line.str("  # cut=").u64(o.cut).end(m);
        }
    }
}

/// `COMM[PID]:KIND`, and `:fdN` for an fd: a task holder in one token.
pub(crate) fn held_by_token(line: &mut Line, h: &bindings::rl_holder) {
    line.cstr(&h.comm)
        .str("[")
        .i64(h.pid.into())
        .str("]:")
        .str(kind_name(h.kind));
    if h.fd >= 0 {
        line.str(":fd").i64(h.fd.into());
    }
}

/// A holder kind's name, as `kind=` prints it.
fn kind_name(kind: u32) -> &'static str {
    use bindings::*;
    match kind {
        x if x == rl_holder_kind_RL_H_MOUNT => "mount",
        x if x == rl_holder_kind_RL_H_CWD => "cwd",
        x if x == rl_holder_kind_RL_H_ROOT => "root",
        x if x == rl_holder_kind_RL_H_EXE => "exe",
        x if x == rl_holder_kind_RL_H_FD => "fd",
        x if x == rl_holder_kind_RL_H_MMAP => "mmap",
        x if x == rl_holder_kind_RL_H_NSFS => "nsfs",
        x if x == rl_holder_kind_RL_H_NSFS_MOUNT => "nsfs_mount",
        x if x == rl_holder_kind_RL_H_FS_CONTEXT => "fs_context",
        x if x == rl_holder_kind_RL_H_SWAP => "swap",
        x if x == rl_holder_kind_RL_H_LOOP => "loop",
        x if x == rl_holder_kind_RL_H_SCM => "scm_rights",
        _ => "?",
    }
}
