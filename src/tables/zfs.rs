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
//! The probes (`join::zfs_handlers`) are armed when `zfs.ko` loads and
//! disarmed before it unloads.

use crate::wrappers::evidence::{Evidence, Name};
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;

/// Concurrent `zfsvfs_hold` calls tracked.
pub(crate) const MAX_HOLDS: usize = 64;
/// Recent holds kept for display.
pub(crate) const RECENT: usize = 64;
/// Flagged holds kept (the most recent).
pub(crate) const MAX_FLAGGED: usize = 16;
/// ZFS returns positive errnos internally.
pub(crate) const ZFS_EBUSY: usize = 16;

/// A `zfsvfs_hold` call in progress on a task.
pub(crate) struct Hold {
    pub(crate) task: AtomicUsize,
    pub(crate) refs: AtomicI32,
    pub(crate) sb: AtomicUsize,
}

impl Hold {
    // Only used to initialize the static array, one fresh copy per element.
    #[allow(clippy::declare_interior_mutable_const)]
    pub(crate) const EMPTY: Self = Self {
        task: AtomicUsize::new(0),
        refs: AtomicI32::new(0),
        sb: AtomicUsize::new(0),
    };
}

pub(crate) static HOLDS: [Hold; MAX_HOLDS] = [const { Hold::EMPTY }; MAX_HOLDS];
pub(crate) static HOLDS_DROPPED: AtomicU64 = AtomicU64::new(0);
pub(crate) static LAYOUT_REJECTED: AtomicU64 = AtomicU64::new(0);
pub(crate) static COUNT_OK: AtomicU64 = AtomicU64::new(0);
pub(crate) static COUNT_EBUSY: AtomicU64 = AtomicU64::new(0);
pub(crate) static COUNT_OTHER: AtomicU64 = AtomicU64::new(0);
pub(crate) static COUNT_RELE: AtomicU64 = AtomicU64::new(0);

/// One finished `zfsvfs_hold`.
#[derive(Clone, Copy, Default)]
pub(crate) struct HoldRecord {
    pub(crate) dataset: Name<48>,
    pub(crate) result: i32,
    /// References taken and not given back by the call.
    pub(crate) kept: i32,
    pub(crate) sb: usize,
    /// The generation of `sb`'s record when the hold ran (its id's second
    /// part), 0 when it had none.
    pub(crate) sb_gen: u32,
    pub(crate) ev: Evidence,
}

/// Recent holds and flagged ones; inside the ledger's lock.
pub(crate) struct Table {
    pub(crate) recent: KVVec<HoldRecord>,
    pub(crate) nrecent: u64,
    pub(crate) flagged: KVVec<HoldRecord>,
    pub(crate) nflagged: u64,
    /// The last `spa_export` refused with EBUSY and not yet applied to the
    /// ZFS superblocks: its time and evidence.  The audit applies it (see
    /// `superblocks::mark_all_busy`); a handler does no work proportional
    /// to the superblock table.
    pub(crate) export_busy: Option<(u64, Evidence)>,
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

    /// Whether a refused export waits to be applied.
    pub(crate) fn export_busy_pending(&self) -> bool {
        self.export_busy.is_some()
    }

    /// Takes the refused export not yet applied, if any.
    pub(crate) fn take_export_busy(&mut self) -> Option<(u64, Evidence)> {
        self.export_busy.take()
    }

    /// Forgets everything.
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

/// The current task, as a key: its address, never dereferenced.
pub(crate) fn current_task() -> usize {
    core::ptr::from_ref::<kernel::task::Task>(kernel::current!()) as usize
}

pub(crate) fn slot_of(task: usize) -> Option<&'static Hold> {
    HOLDS
        .iter()
        .find(|h| h.task.load(Ordering::Acquire) == task)
}
