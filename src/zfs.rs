// SPDX-License-Identifier: GPL-2.0

//! The OpenZFS ledger: `zfsvfs_hold` and the references it takes.
//!
//! ZFS ioctls reach a mounted dataset by name with `zfsvfs_hold()`, which
//! takes an `s_active` reference through `zfs_vfs_ref()` (an open-coded
//! `atomic_inc_not_zero`) and gives it back through `zfs_vfs_rele()`
//! (`deactivate_super`).  OpenZFS #18309: when the dataset is found torn down
//! (`z_unmounted`), `zfsvfs_hold()` returns `EBUSY` without the release, and
//! the superblock can never shut down.
//!
//! The ledger counts, per task, the `zfs_vfs_ref` successes and `zfs_vfs_rele`
//! calls made inside each `zfsvfs_hold` call.  A hold that returns `EBUSY`
//! with more references taken than released is #18309's signature: it is
//! flagged at once, with the dataset, the caller's stack and the superblock.
//!
//! Struct layouts: the only OpenZFS field read is `zfsvfs_t.z_sb`, the second
//! pointer of `struct zfsvfs` in every OpenZFS 2.x
//! (`include/os/linux/zfs/sys/zfs_vfsops_os.h`), and only to name the
//! superblock: a value is used only if it is a superblock the ledger already
//! knows with `fstype=zfs`; anything else is counted in `layout_rejected`.
//! The probes are armed when `zfs.ko` loads and disarmed before it unloads.

use crate::{
    bindings,
    debugfs::{seq_print, SeqFile},
    evidence::{Evidence, Name, Secs},
    kprobe::{Handler, ProbeData, Regs},
    ledger,
    probes::{Candidate, Spec},
};
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use kernel::{c_str, prelude::*};

/// Concurrent `zfsvfs_hold` calls tracked.
const MAX_HOLDS: usize = 64;
/// Recent holds kept for display.
pub(crate) const RECENT: usize = 64;
/// Flagged holds kept (the most recent).
pub(crate) const MAX_FLAGGED: usize = 16;
/// ZFS returns positive errnos internally.
const ZFS_EBUSY: usize = 16;

/// A `zfsvfs_hold` call in progress on a task.
struct Hold {
    task: AtomicUsize,
    refs: AtomicI32,
    sb: AtomicUsize,
}

impl Hold {
    // Only used to initialize the static array, one fresh copy per element.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self = Self {
        task: AtomicUsize::new(0),
        refs: AtomicI32::new(0),
        sb: AtomicUsize::new(0),
    };
}

static HOLDS: [Hold; MAX_HOLDS] = [const { Hold::EMPTY }; MAX_HOLDS];
static HOLDS_DROPPED: AtomicU64 = AtomicU64::new(0);
static LAYOUT_REJECTED: AtomicU64 = AtomicU64::new(0);
static COUNT_OK: AtomicU64 = AtomicU64::new(0);
static COUNT_EBUSY: AtomicU64 = AtomicU64::new(0);
static COUNT_OTHER: AtomicU64 = AtomicU64::new(0);
static COUNT_RELE: AtomicU64 = AtomicU64::new(0);

/// One finished `zfsvfs_hold`.
#[derive(Clone, Copy, Default)]
pub(crate) struct HoldRecord {
    dataset: Name<48>,
    result: i32,
    /// References taken and not given back by the call.
    kept: i32,
    sb: usize,
    /// The generation of `sb`'s record when the hold ran (its id's second
    /// part), 0 when it had none.
    sb_gen: u32,
    ev: Evidence,
}

/// Recent holds and flagged ones; inside the ledger's lock.
pub(crate) struct Table {
    recent: KVVec<HoldRecord>,
    nrecent: u64,
    flagged: KVVec<HoldRecord>,
    nflagged: u64,
    /// The last `spa_export` refused with EBUSY and not yet applied to the
    /// ZFS superblocks: its time and evidence.  The audit applies it (see
    /// `superblocks::mark_all_busy`); a handler does no work proportional
    /// to the superblock table.
    export_busy: Option<(u64, Evidence)>,
}

impl Table {
    /// An empty table.  The arrays are built on the heap: together they are
    /// larger than a kernel stack can spare.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            recent: KVVec::from_elem(HoldRecord::default(), RECENT, GFP_KERNEL)?,
            nrecent: 0,
            flagged: KVVec::from_elem(HoldRecord::default(), MAX_FLAGGED, GFP_KERNEL)?,
            nflagged: 0,
            export_busy: None,
        })
    }

    /// Forgets everything.
    /// Takes the refused export not yet applied, if any.
    pub(crate) fn take_export_busy(&mut self) -> Option<(u64, Evidence)> {
        self.export_busy.take()
    }

    pub(crate) fn clear(&mut self) {
        self.nrecent = 0;
        self.nflagged = 0;
        self.export_busy = None;
        // The counters shown with the table.  Holds in progress are left
        // alone: their calls have not returned yet.
        for c in [
            &HOLDS_DROPPED,
            &LAYOUT_REJECTED,
            &COUNT_OK,
            &COUNT_EBUSY,
            &COUNT_OTHER,
            &COUNT_RELE,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

fn current() -> usize {
    // SAFETY: Reading `current` is always allowed.
    unsafe { bindings::rl_current_task() as usize }
}

fn slot_of(task: usize) -> Option<&'static Hold> {
    HOLDS
        .iter()
        .find(|h| h.task.load(Ordering::Acquire) == task)
}

/// `z_sb` of a `zfsvfs_t`, if it names a superblock the ledger knows as
/// a ZFS one.
fn z_sb(zfsvfs: usize) -> Option<usize> {
    if zfsvfs == 0 {
        return None;
    }
    // SAFETY: `zfsvfs` points to a live `zfsvfs_t` (the caller's), whose
    // second pointer-sized field is `z_sb` in OpenZFS 2.x; the value is only
    // used after the check below.
    let sb = unsafe { core::ptr::read_volatile((zfsvfs as *const usize).add(1)) };
    let l = ledger::get()?;
    if sb != 0
        && l.inner
            .try_lock()
            .is_some_and(|i| i.sbs.is_fstype(sb, b"zfs"))
    {
        Some(sb)
    } else {
        LAYOUT_REJECTED.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn hold_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // zfsvfs_hold(name, tag, zfvp, writer)
    let task = current();
    let Some(h) = HOLDS.iter().find(|h| {
        h.task
            .compare_exchange(0, task, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }) else {
        HOLDS_DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    h.refs.store(0, Ordering::Relaxed);
    h.sb.store(0, Ordering::Relaxed);
    data[0] = regs.arg(0);
    data[1] = regs.entry_return_address();
    data[2] = core::ptr::from_ref(h) as usize;
    true
}

fn hold_exit(regs: &Regs, data: &ProbeData) {
    // SAFETY: `data[2]` is the `HOLDS` slot the entry handler claimed.
    let h = unsafe { &*(data[2] as *const Hold) };
    let result = regs.return_int() as usize;
    let kept = h.refs.load(Ordering::Relaxed);
    let sb = h.sb.load(Ordering::Relaxed);
    h.task.store(0, Ordering::Release);
    match result {
        0 => &COUNT_OK,
        ZFS_EBUSY => &COUNT_EBUSY,
        _ => &COUNT_OTHER,
    }
    .fetch_add(1, Ordering::Relaxed);
    let Some(l) = ledger::get() else { return };
    // SAFETY: `name` is the dataset name the caller passed, a kernel string
    // valid during the call (the ioctl's `zc_name`, NUL-terminated).
    let dataset = unsafe { Name::from_c(data[0] as *const _) };
    let rec = HoldRecord {
        dataset,
        result: result as i32,
        kept,
        sb,
        sb_gen: 0,
        ev: Evidence::capture_regs(regs, data[1]),
    };
    let flag = result == ZFS_EBUSY && kept > 0;
    let Some(mut guard) = l.inner.try_lock() else {
        return;
    };
    let inner = &mut *guard;
    let mut rec = rec;
    rec.sb_gen = inner.sbs.gen(sb);
    let z = &mut inner.zfs;
    let i = (z.nrecent % RECENT as u64) as usize;
    z.recent[i] = rec;
    z.nrecent += 1;
    if flag {
        let i = (z.nflagged % MAX_FLAGGED as u64) as usize;
        z.flagged[i] = rec;
        z.nflagged += 1;
        if sb != 0 {
            if let Some(e) = inner.sbs.note_hold_leak(sb, rec.ev.time, &rec.ev) {
                inner.events.push(e);
            }
        }
    }
}

fn ref_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // zfs_vfs_ref(zfvp): only calls inside a tracked zfsvfs_hold matter.
    let Some(h) = slot_of(current()) else {
        return false;
    };
    let zfvp = regs.arg(0) as *const usize;
    data[0] = if zfvp.is_null() {
        0
    } else {
        // SAFETY: `zfvp` is the caller's `zfsvfs_t **`, set before the call.
        unsafe { *zfvp }
    };
    data[1] = core::ptr::from_ref(h) as usize;
    true
}

fn ref_exit(regs: &Regs, data: &ProbeData) {
    if regs.return_int() != 0 {
        return;
    }
    // SAFETY: The slot is still this task's: the hold has not returned.
    let h = unsafe { &*(data[1] as *const Hold) };
    h.refs.fetch_add(1, Ordering::Relaxed);
    if let Some(sb) = z_sb(data[0]) {
        h.sb.store(sb, Ordering::Relaxed);
    }
}

fn on_rele(_regs: &Regs) {
    COUNT_RELE.fetch_add(1, Ordering::Relaxed);
    if let Some(h) = slot_of(current()) {
        h.refs.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `spa_export` returned: on `EBUSY`, snapshot the ZFS superblocks.
fn export_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    data[0] = regs.arg(0);
    data[1] = regs.entry_return_address();
    ledger::get().is_some()
}

fn export_exit(regs: &Regs, data: &ProbeData) {
    if regs.return_int() as usize != ZFS_EBUSY {
        return;
    }
    let Some(l) = ledger::get() else { return };
    // SAFETY: The pool name the caller passed, valid during the call.
    let _pool: Name<48> = unsafe { Name::from_c(data[0] as *const _) };
    let ev = Evidence::capture_regs(regs, data[1]);
    let now = ev.time;
    let Some(mut guard) = l.inner.try_lock() else {
        return;
    };
    guard.zfs.export_busy = Some((now, ev));
}

/// The probes of this ledger, all in `zfs.ko`.
pub(crate) static SPECS: [Spec; 4] = [
    Spec {
        role: "zfs_hold",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfsvfs_hold"),
            handler: Handler::Return {
                entry: hold_entry,
                exit: hold_exit,
            },
        }],
    },
    Spec {
        role: "zfs_vfs_ref",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfs_vfs_ref"),
            handler: Handler::Return {
                entry: ref_entry,
                exit: ref_exit,
            },
        }],
    },
    Spec {
        role: "zfs_vfs_rele",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfs_vfs_rele"),
            handler: Handler::Entry(on_rele),
        }],
    },
    Spec {
        role: "zfs_export",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("spa_export"),
            handler: Handler::Return {
                entry: export_entry,
                exit: export_exit,
            },
        }],
    },
];

fn show_hold(m: &SeqFile, prefix: &str, r: &HoldRecord) {
    seq_print!(
        m,
        "{} t={} dataset={} result={} kept_refs={} sb=",
        prefix,
        Secs(r.ev.time),
        r.dataset.as_str(),
        r.result,
        r.kept
    );
    if r.sb != 0 {
        m.hashed(r.sb);
        seq_print!(m, ".{}", r.sb_gen);
    } else {
        seq_print!(m, "-");
    }
    seq_print!(m, " ");
    r.ev.show_who(m);
    seq_print!(m, "\n");
}

/// The `zfs` file: counters and the most recent holds.
pub(crate) struct ZfsFile;

impl crate::debugfs::Show for ZfsFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        // Copied out first: the lock is never held while printing.
        let (nflagged, n) = {
            let inner = l.inner.lock();
            (inner.zfs.nflagged, inner.zfs.nrecent)
        };
        seq_print!(
            m,
            "# holds_ok={} holds_ebusy={} holds_other={} vfs_reles={} flagged={} concurrent_capacity={} dropped={} layout_rejected={}\n",
            COUNT_OK.load(Ordering::Relaxed),
            COUNT_EBUSY.load(Ordering::Relaxed),
            COUNT_OTHER.load(Ordering::Relaxed),
            COUNT_RELE.load(Ordering::Relaxed),
            nflagged,
            MAX_HOLDS,
            HOLDS_DROPPED.load(Ordering::Relaxed),
            LAYOUT_REJECTED.load(Ordering::Relaxed)
        );
        for seq in n.saturating_sub(RECENT as u64)..n {
            let r = l.inner.lock().zfs.recent[(seq % RECENT as u64) as usize];
            show_hold(m, "hold", &r);
        }
        Ok(())
    }
}

/// The ZFS part of `leaks`: holds that returned EBUSY keeping a reference.
pub(crate) fn show_leaks(m: &SeqFile) {
    let Some(l) = ledger::get() else { return };
    let n = l.inner.lock().zfs.nflagged;
    for seq in n.saturating_sub(MAX_FLAGGED as u64)..n {
        let r = l.inner.lock().zfs.flagged[(seq % MAX_FLAGGED as u64) as usize];
        show_hold(m, "zfs_hold_leak", &r);
        r.ev.show_stack(m, "    ");
    }
}
