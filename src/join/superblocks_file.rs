// SPDX-License-Identifier: GPL-2.0

//! The `superblocks` file, and the superblock parts of `leaks` and of the
//! `modules` file's `held_by` lines.
//!
//! Readers copy a record (or format a few) under the ledger's lock and
//! print with it dropped, so a probe handler never waits long.

use crate::{
    join::{
        audit::audit,
        ledger::{self, Ledger},
    },
    tables::{
        events::Kind,
        superblocks::{Identity, Record, Site, State, MAX_SBS, SITES_PER_SB},
    },
    wrappers::{
        clock::now_ns,
        debugfs::{seq_print, Line, SeqFile, Show},
        evidence::{DevT, Secs},
    },
};
use kernel::{c_str, prelude::*};

/// Prints `sb=<id> fstype=.. s_id=.. dev=M:m` (no newline).
fn show_identity(m: &SeqFile, r: &Record) {
    m.hashed_as(c_str!("sb=%p"), r.sb);
    seq_print!(m, ".{}{}", r.gen, Names(&r.id));
}

/// ` fstype=.. s_id=.. dev=M:m`, as [`show_identity`] prints after `sb=`.
struct Names<'a>(&'a Identity);

impl core::fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            " fstype={} s_id={} dev={}",
            self.0.fstype.as_str(),
            self.0.s_id.as_str(),
            DevT(self.0.dev)
        )
    }
}

/// Prints the chain a stuck unmount is read along: the block device and the
/// modules of the filesystem type and of the disk driver.
fn show_chain(m: &SeqFile, r: &Record) {
    seq_print!(m, "{}", Chain(r));
}

/// ` bdev=.. disk_module=.. fs_module=..`, as [`show_chain`] prints it.
struct Chain<'a>(&'a Record);

impl core::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let id = &self.0.id;
        if id.bdev != 0 {
            write!(
                f,
                " bdev={} disk_module={}",
                DevT(id.bdev),
                id.disk_module.as_str()
            )?;
        } else {
            f.write_str(" bdev=-")?;
        }
        write!(f, " fs_module={}", id.fs_module.as_str())
    }
}

/// `mounts=N`, or `mounts=N+` when `N` is a lower bound.
struct Mounts<'a>(&'a Record);

impl core::fmt::Display for Mounts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let plus = if self.0.mounts_exact { "" } else { "+" };
        write!(f, "mounts={}{}", self.0.mounts, plus)
    }
}

/// Prints the live superblocks whose filesystem type is module `name`.
pub(crate) fn show_holders_of(l: &Ledger, m: &SeqFile, name: &[u8]) {
    for i in 0..l.sb_slots() {
        let Some(r) = l.sb_record(i) else {
            continue;
        };
        if !r.id.fs_module.is(name) || matches!(r.state, State::ShutDown | State::Freed) {
            continue;
        }
        seq_print!(m, "  held_by ");
        show_identity(m, &r);
        seq_print!(m, " state={} s_active={}\n", r.state.name(), r.s_active);
    }
}

fn show_mounts(m: &SeqFile, r: &Record) {
    seq_print!(m, " {}", Mounts(r));
}

/// A record with its release and acquisition evidence.
type RecordCopy = (
    Record,
    [Option<Site>; SITES_PER_SB],
    [Option<Site>; SITES_PER_SB],
);

/// Lines the `superblocks` file formats under one taking of the lock.
/// Formatting straight from the table, with no copy of the record, halves
/// what a line costs; eight lines keep a handler waiting a few microseconds
/// at most.
const LINE_BATCH: usize = 8;

/// Copies record `i` out of the table, with its evidence, under the lock.
fn copy_record(l: &Ledger, i: usize) -> Option<RecordCopy> {
    let inner = l.inner.lock();
    let r = inner.sbs.recs[i];
    if !r.used {
        return None;
    }
    let mut rel = [None; SITES_PER_SB];
    let mut acq = [None; SITES_PER_SB];
    for (d, id) in rel.iter_mut().zip(r.releases.iter()) {
        *d = inner.sbs.site(id);
    }
    for (d, id) in acq.iter_mut().zip(r.acquires.iter()) {
        *d = inner.sbs.site(id);
    }
    Some((r, rel, acq))
}

/// The `superblocks` file.
pub(crate) struct SuperblocksFile;

impl Show for SuperblocksFile {
    fn size_hint(&self) -> usize {
        // About 300 bytes a line: one read, no retry with a larger buffer.
        ledger::get().map_or(0, |l| (l.inner.lock().sbs.tracked() + 1) * 320)
    }

    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        audit(l);
        let now = now_ns();
        let (last, types, walk_error) = l.audit_info();
        let (tracked, dropped) = {
            let inner = l.inner.lock();
            (inner.sbs.tracked(), inner.sbs.dropped)
        };
        seq_print!(
            m,
            "# tracked={} capacity={} dropped={} grace_ms={} handler_lock_contended={}\n",
            tracked,
            MAX_SBS,
            dropped,
            l.grace_ms(),
            l.inner.contended()
        );
        if let Some(e) = walk_error {
            seq_print!(m, "# audit=unavailable error={}\n", e.to_errno());
        } else {
            seq_print!(
                m,
                "# audit=ok age_ms={} fs_types={}\n",
                now.saturating_sub(last) / 1_000_000,
                types
            );
        }
        // A few records at a time (`LINE_BATCH`), so probe handlers never
        // wait long for the lock.  Slots keep their records, so the order is
        // stable.  A line is built without `core::fmt`, in place in the
        // file's buffer (see `Line`); only a record the audit has not yet
        // given an id (`hid`) costs a `%p` call.
        let mut line = Line::new();
        let n = l.sb_slots();
        for start in (0..n).step_by(LINE_BATCH) {
            let inner = l.inner.lock();
            let end = (start + LINE_BATCH).min(n);
            for r in inner.sbs.recs[start..end].iter().filter(|r| r.used) {
                show_row(m, &mut line, r, now);
            }
        }
        Ok(())
    }
}

/// One `superblocks` line, formatted with the ledger's lock held: it
/// neither sleeps nor allocates (it is built in the buffer the seq_file
/// core allocated, and a line that does not fit is retried by it).
fn show_row(m: &SeqFile, line: &mut Line, r: &Record, now: u64) {
    if r.hid == 0 {
        m.hashed_as(c_str!("sb=%p"), r.sb);
    }
    // Built in the file's buffer: nothing else is printed to `m` until
    // `end`.
    line.begin(m);
    if r.hid != 0 {
        line.str("sb=").hex16(r.hid);
    }
    line.str(".").u64(r.gen.into());
    let id = &r.id;
    line.str(" fstype=")
        .name(id.fstype.raw())
        .str(" s_id=")
        .name(id.s_id.raw())
        .str(" dev=")
        .dev(id.dev)
        .str(" state=")
        .str(r.state.name())
        .str(" s_active=")
        .i64(r.s_active.into())
        .str(" mounts=")
        .i64(r.mounts.into())
        .str(if r.mounts_exact { "" } else { "+" });
    if id.bdev != 0 {
        line.str(" bdev=")
            .dev(id.bdev)
            .str(" disk_module=")
            .name(id.disk_module.raw());
    } else {
        line.str(" bdev=-");
    }
    line.str(" fs_module=")
        .name(id.fs_module.raw())
        .str(" unmounted=")
        .i64(r.unmounted.into())
        .str(" state_ms=")
        .u64(now.saturating_sub(r.state_since) / 1_000_000)
        .str(" first_seen=")
        .secs(r.first_seen)
        .str(" last_umount=")
        .secs(r.last_umount)
        .str(" shutdown=")
        .secs(r.shutdown)
        .str(" releases=")
        .u64(r.n_releases.into())
        .str(" acquires=")
        .u64(r.n_acquires.into())
        .str(" s_umount=")
        .str(if r.umount_locked { "held" } else { "free" })
        .end(m);
}

fn show_site(m: &SeqFile, s: &Site) {
    let what = if s.kind == Kind::Release {
        "release"
    } else {
        "acquire"
    };
    seq_print!(
        m,
        "  {} t={} kind={} s_active={} ",
        what,
        Secs(s.ev.time),
        events_kind(s.kind),
        s.s_active
    );
    s.ev.show_who(m);
    seq_print!(m, "\n");
    s.ev.show_stack(m, "    ");
}

fn events_kind(k: Kind) -> &'static str {
    match k {
        Kind::Mount => "mount",
        Kind::Clone => "clone",
        Kind::Release => "deactivate_super",
        Kind::HoldLeak => "zfsvfs_hold_ebusy",
        _ => "other",
    }
}

/// What the `leaks` file adds under a busy or leaked superblock: who holds
/// it now and who held it at a refusal (`leaks` joins `holders` and
/// `captures` for it); this view only says where it goes.
pub(crate) trait HolderReport {
    /// Appends ` held_by=...`, naming the first holder found, if any.
    fn held_by(&self, m: &SeqFile);
    /// Prints the balance and one line per holder, each indented by two
    /// spaces.
    fn show(&self, m: &SeqFile);
}

/// The superblock part of the `leaks` file: each flagged superblock, with
/// its evidence and, from `walk` (given the superblock's address and its
/// record's generation, for one not being shut down), its holders.
pub(crate) fn show_leaks<H: HolderReport>(
    l: &Ledger,
    m: &SeqFile,
    walk: impl Fn(usize, u32) -> Option<H>,
) -> Result {
    audit(l);
    let now = now_ns();
    for i in 0..l.sb_slots() {
        let Some((r, rel, acq)) = copy_record(l, i) else {
            continue;
        };
        if r.flagged == 0 {
            continue;
        }
        seq_print!(m, "superblock ");
        show_identity(m, &r);
        show_chain(m, &r);
        if r.resolved {
            seq_print!(
                m,
                " state=resolved stalled_ms={} flagged={} now={}",
                r.stalled / 1_000_000,
                Secs(r.flagged),
                r.state.name()
            );
        } else {
            seq_print!(
                m,
                " state=leaked stalled_ms={} flagged={}",
                now.saturating_sub(r.stall_start()) / 1_000_000,
                Secs(r.flagged)
            );
        }
        seq_print!(m, " s_active={}", r.s_active);
        show_mounts(m, &r);
        if r.mounts_exact {
            seq_print!(m, " unexplained={}", (r.s_active - r.mounts).max(0));
        }
        seq_print!(m, " releases={} acquires={}", r.n_releases, r.n_acquires);
        let holders = (!r.resolved
            && !matches!(r.state, State::Dying | State::ShutDown | State::Freed))
        .then(|| walk(r.sb, r.gen))
        .flatten();
        if let Some(h) = &holders {
            h.held_by(m);
        }
        seq_print!(m, "\n");
        for s in Iterator::chain(rel.iter(), acq.iter()).flatten() {
            show_site(m, s);
        }
        if let Some(h) = &holders {
            h.show(m);
        }
    }
    Ok(())
}

/// The busy part of `leaks`: superblocks an unmount or export was refused
/// for, with what held them: a mount in use is a real holder; a leaked
/// reference is not.  `walk` finds who holds one now (see [`show_leaks`]).
pub(crate) fn show_busy<H: HolderReport>(
    l: &Ledger,
    m: &SeqFile,
    walk: impl Fn(usize, u32) -> Option<H>,
) {
    for i in 0..l.sb_slots() {
        let Some(r) = l.sb_record(i) else {
            continue;
        };
        if r.busy_at == 0 || matches!(r.state, State::ShutDown | State::Freed) {
            continue;
        }
        let verdict = match r.state {
            State::Live => "real_holder:mounted_and_in_use",
            State::Pending => "real_holder:unmounted_but_files_open",
            State::Leaked | State::Detached => "leaked_reference",
            State::Held => "real_holder:held_without_mounts",
            State::Frozen => "real_holder:frozen",
            _ => "shutting_down",
        };
        seq_print!(m, "busy ");
        show_identity(m, &r);
        seq_print!(
            m,
            " refused={} last={} state={} s_active={}",
            r.busy_count,
            Secs(r.busy_at),
            r.state.name(),
            r.s_active
        );
        show_mounts(m, &r);
        seq_print!(m, " verdict={}", verdict);
        let holders = (r.state != State::Dying)
            .then(|| walk(r.sb, r.gen))
            .flatten();
        if let Some(h) = &holders {
            h.held_by(m);
        }
        seq_print!(m, "\n");
        if let Some(h) = &holders {
            h.show(m);
        }
    }
}

/// The stuck part of `leaks`: superblocks whose unmount (`kill_sb`) or
/// mount (`fill_super`) has not finished within the grace period.  Not a
/// leak: the task doing it is blocked, and `s_umount=held` says it holds
/// the superblock's lock while it is.
pub(crate) fn show_stuck(l: &Ledger, m: &SeqFile) {
    let now = now_ns();
    let grace = l.grace_ns();
    for i in 0..l.sb_slots() {
        let Some(r) = l.sb_record(i) else {
            continue;
        };
        let verdict = match r.state {
            State::Dying => "shutdown_not_finishing",
            State::Mounting => "mount_not_finishing",
            _ => continue,
        };
        let stuck = now.saturating_sub(r.state_since);
        if stuck < grace {
            continue;
        }
        seq_print!(m, "stuck ");
        show_identity(m, &r);
        seq_print!(
            m,
            " state={} stuck_ms={} s_active={} s_umount={} verdict={}\n",
            r.state.name(),
            stuck / 1_000_000,
            r.s_active,
            if r.umount_locked { "held" } else { "free" },
            verdict
        );
    }
}
