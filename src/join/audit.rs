// SPDX-License-Identifier: GPL-2.0

//! The audit: reconciles the superblock table with the kernel's own list.
//!
//! Most `s_active` changes are invisible to probes, so the ledger's states
//! are decided here, at the start of every read of `superblocks` and
//! `leaks` and, when something may have moved on unseen (see [`walk_due`]),
//! periodically (`audit_ms`): each superblock's real `s_active` and
//! `s_mounts` are read under `sb_lock` (`rl_walk_supers`), the table is
//! updated, and a superblock past its grace period with no mounts is judged
//! by a holder walk ([`holders::explained`]) before it is flagged.  The
//! audit also seeds the ledger at load and after a `reset`.

use crate::{
    join::{
        holders,
        ledger::{self, note_transition, with_record, Inner, Ledger},
        notifier, sb_handlers,
    },
    tables::{
        bdevs,
        events::Kind,
        modules,
        superblocks::{self, flag, Record, Snapshot, State, Transition},
    },
    wrappers::{
        bindings,
        clock::{self, now_ns},
        evidence::Evidence,
        probes::ProbeSet,
        sync::Guard,
    },
};
use core::{ffi::c_void, sync::atomic::Ordering};
use kernel::prelude::*;

/// Starts the audits: lists what exists now ([`seed`]), then looks every
/// `audit_ms`.  The module notifier is registered first, so a module that
/// loads meanwhile is not missed.
pub(crate) fn start(l: &Ledger) {
    l.start_notifier();
    seed(l, false);
    l.start_audit();
}

/// Forgets everything recorded, then audits to find the live superblocks
/// again.
pub(crate) fn reset(l: &Ledger) {
    seed(l, true);
}

/// The first audit after load (or, with `clear`, after forgetting
/// everything): lists the superblocks that already exist, without an event
/// for each.
fn seed(l: &Ledger, clear: bool) {
    let mut types = l.audit_lock.lock();
    if clear {
        modules::reset();
        let mut inner = l.inner.lock();
        inner.sbs.clear();
        inner.events.clear();
        l.bdevs.clear(&mut inner.bdevs);
        inner.zfs.clear();
    }
    // Block devices open now, opened before load or reset: found without
    // the ledger's lock, merged under it.
    match bdevs::seed() {
        Ok(found) => l.bdevs.merge_seed(&mut l.inner.lock().bdevs, &found),
        Err(_) => pr_warn!("no memory to seed the block device ledger\n"),
    }
    l.seeding.store(true, Ordering::Relaxed);
    audit_locked(l, &mut types);
    l.seeding.store(false, Ordering::Relaxed);
}

/// The periodic audit's work function (see [`Ledger::new`]).
///
/// # Safety
///
/// Called by the workqueue for the ledger's `work`.
pub(crate) unsafe extern "C" fn audit_work(_work: *mut bindings::work_struct) {
    let Some(l) = ledger::get() else { return };
    if walk_due(l) {
        audit(l);
    } else {
        // The handlers' clock still takes a new anchor every period, with
        // the audit lock held: an audit a read started meanwhile compares
        // its times before it takes its own anchor, which a new one in the
        // middle would undo (see `clock`).  Audits never wait on a
        // filesystem, so neither does this.
        let _audit = l.audit_lock.lock();
        clock::sync();
    }
    if l.audit_running() {
        l.queue_audit();
    }
}

/// Periods in a row the periodic audit may leave out its walk.  Every
/// tenth walks anyway: to find a superblock no probe saw made that is not
/// the one listed last (see [`walk_due`]), and to retire the records of
/// superblocks freed since.
const MAX_SKIPPED: u32 = 9;

/// Records of superblocks shut down, waiting for a walk to find them gone,
/// or made and waiting for a walk to hash their ids, beyond which the
/// periodic audit walks at once: under mount churn, so that shut-down
/// records never fill the table and the first read after many mounts does
/// not hash all their ids.  (With walks skipped and no such bound, the
/// mean of three reads just after 10,000 mounts went from 96 to 114 ms,
/// most likely for the hashing.)
const TIDY_BACKLOG: usize = 256;

/// What tells a periodic audit whether anything happened unseen since the
/// last walk: handlers that gave up on the lock (and so left a record
/// behind) and probe hits the kprobe core could not deliver, counted when
/// the walk started, and the superblock listed last now.
struct Marks {
    contended: u64,
    /// `None` while a superblock role has no probe armed.
    missed: Option<u64>,
    /// `None` when the list of superblocks cannot be read.
    last_super: Option<usize>,
}

impl Marks {
    fn now(l: &Ledger) -> Self {
        // Misses of every probe, not only the superblock roles': picking
        // those out by role name each period took some 700 instructions
        // (5,445 per ZFS create, snapshot and destroy), and other probes
        // rarely miss.
        let missed = notifier::with_probes(|p| p.missed())
            .filter(|_| l.walks.sb_armed.load(Ordering::Relaxed));
        let mut last = 0usize;
        // SAFETY: `rl_last_super` only stores the address it read.
        let found = unsafe { bindings::rl_last_super((&raw mut last).cast()) } == 0;
        Marks {
            contended: l.inner.contended(),
            missed,
            last_super: found.then_some(last),
        }
    }

    /// Keeps these as what the next periodic audit compares with.
    fn keep(&self, l: &Ledger) {
        let w = &l.walks;
        w.contended.store(self.contended, Ordering::Relaxed);
        w.missed.store(self.missed.unwrap_or(0), Ordering::Relaxed);
    }
}

/// Whether this period's audit walks the superblocks.  Probes see every
/// mount, release and shutdown, so a walk can find something new only
/// when:
/// - a record is in a state that time or an unprobed change moves on
///   ([`State::awaits_audit`]);
/// - a handler gave up on the lock, or a superblock probe missed a hit or
///   is not armed: a record may have been left behind;
/// - the superblock listed last has no record, or one of a superblock shut
///   down (a new one at a freed one's address): a mount stuck in its
///   filesystem's `fill_super`, an `fsopen(2)` context;
/// - a refused `zpool export` waits to be marked;
/// - [`MAX_SKIPPED`] periods passed without a walk, for what the above
///   cannot tell (more than one such superblock, records of superblocks
///   freed since).
///
/// Walking every superblock every second regardless was nearly all
/// refledger added to a ZFS operation of a few seconds.
fn walk_due(l: &Ledger) -> bool {
    let w = &l.walks;
    if w.skipped.fetch_add(1, Ordering::Relaxed) >= MAX_SKIPPED {
        return true;
    }
    let m = Marks::now(l);
    if m.contended != w.contended.load(Ordering::Relaxed)
        || m.missed != Some(w.missed.load(Ordering::Relaxed))
    {
        return true;
    }
    let Some(last) = m.last_super else {
        return true;
    };
    let inner = l.inner.lock();
    inner.sbs.walk_due(TIDY_BACKLOG)
        || inner.zfs.export_busy_pending()
        || (last != 0 && !inner.sbs.live_at(last))
}

/// The probes are armed: the next periodic audit walks, for what happened
/// between the walk that seeded the ledger and the arming.
/// Superblock roles never lose their probe once armed (only `zfs.ko`'s come
/// and go), so whether each has one is noted here, once.
pub(crate) fn armed(l: &Ledger, probes: &ProbeSet) {
    l.walks
        .sb_armed
        .store(probes.roles_armed(&sb_handlers::SPECS), Ordering::Relaxed);
    l.inner.lock().sbs.unsettle();
}

/// What [`audit_one`] needs during a walk.
struct AuditWalk<'a> {
    l: &'a Ledger,
    now: u64,
    /// Superblocks found by the first audit after load or reset predate the
    /// ledger: they are listed, not announced.
    quiet: bool,
    /// This walk's number ([`superblocks::Table::start_walk`]).
    walk: u32,
    /// The ledger's lock, held across up to [`AUDIT_BATCH`] superblocks of
    /// one type ([`audit_type_done`] drops it, before `sb_lock` is dropped).
    guard: Option<Guard<'a, Inner>>,
    /// Superblocks handled under `guard`.
    batch: usize,
}

/// # Safety
///
/// Called by `rl_walk_supers` after the superblocks of one type, with
/// `sb_lock` still held; `arg` is the [`AuditWalk`] that [`audit`] passed.
unsafe extern "C" fn audit_type_done(arg: *mut c_void) {
    // SAFETY: `arg` is the walk state, lent to the walk by `audit_locked`,
    // and nothing else uses it during the walk.
    let w = unsafe { &mut *arg.cast::<AuditWalk<'_>>() };
    w.guard = None;
    w.batch = 0;
}

/// # Safety
///
/// Called by `rl_walk_supers` with RCU read-locked, `sb_lock` held and `sb`
/// on its type's `fs_supers`; `arg` is the [`AuditWalk`] that [`audit`]
/// passed.
unsafe extern "C" fn audit_one(sb: *mut bindings::super_block, arg: *mut c_void) {
    // SAFETY: `arg` is the walk state, lent to the walk by `audit_locked`,
    // and nothing else uses it during the walk.
    let w = unsafe { &mut *arg.cast::<AuditWalk<'_>>() };
    // SAFETY: `sb` is allocated while listed under `sb_lock`.
    let state = unsafe { bindings::rl_sb_state(sb) };
    if state & bindings::RL_SB_DYING != 0 {
        // Shut down (since 6.18 a superblock stays listed until its last
        // passive reference): as good as gone for the ledger.
        return;
    }
    // SAFETY: As above.
    let snap = unsafe { Snapshot::read(sb as usize) };
    let born = state & bindings::RL_SB_BORN != 0;
    let umount_locked = state & bindings::RL_SB_UMOUNT_LOCKED != 0;
    let walk = w.walk;
    let update = |inner: &mut Inner, i: usize, _now: u64| {
        if born && !inner.sbs.recs[i].born {
            // Listed before its filesystem filled it in: its block device
            // and `s_id` were not set yet.
            // SAFETY: `sb` is listed and `sb_lock` is held.
            unsafe { inner.sbs.refresh_identity(i, true) };
        }
        let r = &mut inner.sbs.recs[i];
        r.apply(&snap);
        r.born = born;
        r.umount_locked = umount_locked;
        r.seen = walk;
    };
    // The lock is taken once per batch: once per superblock, it was a
    // tenth of a read of 10,000 superblocks.
    if w.batch == AUDIT_BATCH {
        w.guard = None;
        w.batch = 0;
    }
    w.batch += 1;
    let l = w.l;
    let inner = w.guard.get_or_insert_with(|| l.inner.lock());
    // A record shut down at this address is this superblock still being
    // torn down if nothing holds it (`s_active` 0); a superblock listed
    // with references is a new one at a reused address.
    let alive = snap.s_active > 0;
    // SAFETY: `sb` is listed and `sb_lock` is held, as `Table::get` needs
    // with `listed`.
    unsafe {
        with_record(
            inner,
            sb as usize,
            &snap,
            alive,
            true,
            w.quiet,
            w.now,
            update,
        )
    };
}

/// Records an audit handles under one taking of the ledger's lock (eight
/// times as many when it only clears a flag): taking it once per record was
/// a tenth of a read of 10,000 superblocks, and a batch keeps a handler
/// waiting a few microseconds at most.
const AUDIT_BATCH: usize = 32;

/// Reconciles the ledger with every superblock's real `s_active` and
/// `s_mounts`, applies the grace period and flags leaks.  Process context
/// only; it never blocks on a filesystem (see `rl_walk_supers`): the only
/// lock it waits for is the audit lock, held by other audits, which never
/// block either.
pub(crate) fn audit(l: &Ledger) {
    let mut types = l.audit_lock.lock();
    audit_locked(l, &mut types);
}

/// [`audit`], for a caller that holds the audit lock, whose scratch space
/// for the types walked is `types`.
pub(crate) fn audit_locked(l: &Ledger, types: &mut [usize]) {
    let start_ns = now_ns();
    // What calls for the next walk from now on: what the handlers do
    // meanwhile, and what this audit leaves for the next.
    l.walks.skipped.store(0, Ordering::Relaxed);
    Marks::now(l).keep(l);
    let (export, walk_no) = {
        let mut inner = l.inner.lock();
        (inner.zfs.take_export_busy(), inner.sbs.start_walk())
    };
    if let Some((time, ev)) = export {
        mark_all_busy(l, b"zfs", time, &ev, Kind::ExportBusy);
    }
    let mut walk = AuditWalk {
        l,
        now: start_ns,
        quiet: l.seeding.load(Ordering::Relaxed),
        walk: walk_no,
        guard: None,
        batch: 0,
    };
    let mut ntypes = 0u32;
    // SAFETY: `audit_one` and `audit_type_done` match the callback types and
    // `walk` outlives the walk; `types` has room for `types.len()` entries.
    unsafe {
        bindings::rl_walk_supers(
            l.first_fs_type(),
            Some(audit_one),
            Some(audit_type_done),
            (&raw mut walk).cast(),
            types.as_mut_ptr().cast(),
            types.len() as u32,
            &mut ntypes,
        )
    };
    // Searched, not sorted: only records the walk did not list look their
    // type up, a few per walk, where an insertion sort of every type walked
    // (sixty or so) costs each walk hundreds of swaps.
    let walked = &types[..(ntypes as usize).min(superblocks::MAX_TYPES)];
    // With more types than remembered, a record's type may have been walked
    // without being remembered: then no record is taken for freed.
    let complete = ntypes as usize <= superblocks::MAX_TYPES;
    l.note_audit(start_ns, ntypes);

    let now = now_ns();
    let grace = l.grace_ns();
    // A batch of records at a time, so probe handlers never wait long for
    // the lock; what must not run under it (printing a leak, hashing an
    // id) is done after each batch.
    let n = l.sb_slots();
    // What each batch leaves for after its lock is dropped, cleared once
    // per walk rather than per batch (a kilobyte and a half each time).
    let mut reports = [(0usize, 0u64); AUDIT_BATCH];
    let mut no_hid = [(0usize, 0usize); AUDIT_BATCH];
    let mut suspects = [(0usize, 0usize, 0u32); AUDIT_BATCH];
    for start in (0..n).step_by(AUDIT_BATCH) {
        let end = (start + AUDIT_BATCH).min(n);
        let mut nreports = 0;
        let mut nno_hid = 0;
        let mut nsuspects = 0;
        {
            let mut guard = l.inner.lock();
            let inner = &mut *guard;
            for i in start..end {
                let r = &inner.sbs.recs[i];
                if !r.used || r.state == State::Freed {
                    continue;
                }
                if r.hid == 0 {
                    no_hid[nno_hid] = (i, r.sb);
                    nno_hid += 1;
                }
                if r.seen == walk_no {
                    let t = inner.sbs.evaluate(i, now, grace);
                    let r = &inner.sbs.recs[i];
                    match t {
                        Some(Transition::Suspect) => {
                            suspects[nsuspects] = (i, r.sb, r.gen);
                            nsuspects += 1;
                        }
                        Some(t) => note_transition(r, t, now, &mut inner.events),
                        None => {}
                    }
                } else if r.first_seen < start_ns
                    && (r.state == State::ShutDown || (complete && walked.contains(&r.id.s_type)))
                {
                    // (A record made by a probe during the walk may simply
                    // not have been listed yet when its type was walked.)
                    // Not listed any more: shut down and freed, or being
                    // torn down.  A record we saw shut down is freed now;
                    // any other is dying, and freed if it is still missing
                    // at the next audit.
                    if matches!(r.state, State::ShutDown | State::Dying) {
                        let e = r.event(Kind::Freed, now, None, 0);
                        let resolved = inner.sbs.retire(i, now);
                        inner.events.push(e);
                        if resolved {
                            let r = &inner.sbs.recs[i];
                            inner.events.push(r.event(Kind::Resolved, now, None, 0));
                        }
                    } else {
                        inner.sbs.set_state(i, State::Dying, now);
                        inner.sbs.unsettle();
                    }
                }
            }
        }
        // Each suspect is judged by a holder walk, with the lock dropped;
        // then, under it, flagged or held if it has not moved on meanwhile.
        for &(i, sb, gen) in &suspects[..nsuspects] {
            let explained = holders::explained(sb) == Some(true);
            let mut guard = l.inner.lock();
            let inner = &mut *guard;
            let r = &mut inner.sbs.recs[i];
            // The walk took a while: still the same superblock, still
            // without mounts, and still past its grace period (a mount
            // and unmount meanwhile starts it again).
            let now = now_ns();
            if !r.used
                || r.sb != sb
                || r.gen != gen
                || r.has_mounts
                || r.no_mounts_since == 0
                || now.saturating_sub(r.no_mounts_since) < grace
                || !matches!(r.state, State::Detached | State::Held)
            {
                continue;
            }
            if explained {
                inner.sbs.set_state(i, State::Held, now);
            } else {
                // How long it stalled, taken now: the copy printed below may
                // be of a record mounted again meanwhile, whose start is 0.
                let stalled_ms = now.saturating_sub(r.no_mounts_since) / 1_000_000;
                let t = flag(r, now);
                note_transition(r, t, now, &mut inner.events);
                reports[nreports] = (i, stalled_ms);
                nreports += 1;
            }
        }
        // Printed with the lock dropped, from a copy: the record may have
        // moved on meanwhile, which the printed line can only trail.
        for &(i, stalled_ms) in &reports[..nreports] {
            if let Some(r) = l.sb_record(i) {
                report_leak(&r, stalled_ms);
            }
        }
        for &(i, sb) in &no_hid[..nno_hid] {
            fill_hid(l, i, sb);
        }
    }
    // A new anchor for the handlers' clock, once the audit has used its
    // times: a record a probe made during the walk must not read as older
    // than `start_ns`, which a step between the anchors could make it.
    clock::sync();
}

/// Fills in record `i`'s `hid`, for superblock `sb`, hashing with the lock
/// dropped: handlers never wait for `vsnprintf`.
fn fill_hid(l: &Ledger, i: usize, sb: usize) {
    // SAFETY: `rl_ptr_hash` only formats the value with `%p`, which hashes
    // it and never dereferences it.
    let hid = unsafe { bindings::rl_ptr_hash(sb as kernel::ffi::c_ulong) };
    if hid == 0 {
        return;
    }
    let mut inner = l.inner.lock();
    let r = &mut inner.sbs.recs[i];
    // The slot may have been retired and reused meanwhile.
    if r.used && r.sb == sb {
        r.hid = hid;
    }
}

fn report_leak(r: &Record, stalled_ms: u64) {
    let mut fstype = [0u8; 17];
    let mut s_id = [0u8; 33];
    fstype[..r.id.fstype.as_str().len()].copy_from_slice(r.id.fstype.as_str().as_bytes());
    s_id[..r.id.s_id.as_str().len()].copy_from_slice(r.id.s_id.as_str().as_bytes());
    // SAFETY: Both names are NUL-terminated; `sb` is only printed, hashed.
    unsafe {
        bindings::rl_report_leak(
            fstype.as_ptr().cast(),
            s_id.as_ptr().cast(),
            r.sb as *const c_void,
            r.gen,
            r.s_active,
            stalled_ms as usize,
        )
    };
}

/// A refusal that concerns every superblock of a type (`zpool export`):
/// marks each one that can still hold something busy, with an event, one
/// record at a time.  Process context: handlers leave this to the audit.
fn mark_all_busy(l: &Ledger, fstype: &[u8], now: u64, ev: &Evidence, kind: Kind) {
    for i in 0..l.sb_slots() {
        let mut guard = l.inner.lock();
        let inner = &mut *guard;
        let r = &mut inner.sbs.recs[i];
        if !r.used
            || matches!(r.state, State::ShutDown | State::Freed | State::Dying)
            || !r.id.fstype.is(fstype)
        {
            continue;
        }
        r.busy_at = now;
        r.busy_count = r.busy_count.saturating_add(1);
        let e = r.event(kind, now, Some(ev), r.s_active);
        inner.events.push(e);
    }
}
