// SPDX-License-Identifier: GPL-2.0

//! The ledger: the tables every probe handler and debugfs file shares, under
//! one lock (but for the block device ledger's open/close path, which is
//! lock-free), with the settings, the audit's work item and the module
//! notifier's block (its callback is `notifier`'s).
//!
//! Probe handlers find the ledger through a global pointer that is set before
//! any probe is armed and cleared only after every probe is disarmed (see
//! `RefLedger` in the crate root), so a handler never sees a freed ledger.

use crate::{
    join::notifier,
    tables::{bdevs, events, modules, superblocks, zfs},
    wrappers::{bindings, error::Unavailable, sync::HandlerLock},
};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::{c_str, new_mutex, prelude::*, sync::Mutex, types::Opaque};

/// Default grace period before a superblock with no mounts is flagged.
pub(crate) const DEFAULT_GRACE_MS: u32 = 5000;
/// Default period of the background audit.
pub(crate) const DEFAULT_AUDIT_MS: u32 = 1000;
/// Accepted range of `grace_ms=`.
pub(crate) const GRACE_MS_RANGE: core::ops::RangeInclusive<u32> = 100..=3_600_000;
/// Accepted range of `audit_ms=`.
pub(crate) const AUDIT_MS_RANGE: core::ops::RangeInclusive<u32> = 100..=60_000;

/// What the lock protects.
pub(crate) struct Inner {
    /// The superblock ledger.
    pub(crate) sbs: superblocks::Table,
    /// Recent events.
    pub(crate) events: events::Ring,
    /// The proof, for the block device ledger, that the lock is held.
    pub(crate) bdevs: bdevs::Locked,
    /// The OpenZFS ledger.
    pub(crate) zfs: zfs::Table,
}

/// Runs `f` on the ledger's locked state with `sb`'s record, creating it if
/// needed, at time `now` (a probe handler's evidence time: the clock is read
/// once).  A new record is announced with a `seen` event unless `quiet`.
///
/// # Safety
///
/// As for [`superblocks::Table::get`] with the same `sb` and `listed`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn with_record(
    inner: &mut Inner,
    sb: usize,
    snap: &superblocks::Snapshot,
    alive: bool,
    listed: bool,
    quiet: bool,
    now: u64,
    f: impl FnOnce(&mut Inner, usize, u64),
) {
    // SAFETY: Per the safety contract.
    let Some((i, new)) = (unsafe { inner.sbs.get(sb, snap, alive, listed, now) }) else {
        return;
    };
    if new && !quiet {
        inner.sbs.recs[i].push_event(
            &mut inner.events,
            events::Kind::Seen,
            now,
            None,
            snap.s_active,
        );
    }
    f(inner, i, now);
}

/// Records what [`superblocks::evaluate`] found as an event.  The dmesg line for a new
/// leak is the audit's, printed outside the lock.
pub(crate) fn note_transition(
    r: &superblocks::Record,
    t: superblocks::Transition,
    now: u64,
    events: &mut events::Ring,
) {
    match t {
        superblocks::Transition::Leak => {
            r.push_event(events, events::Kind::Leak, now, None, r.s_active)
        }
        superblocks::Transition::Resolved => {
            r.push_event(events, events::Kind::Resolved, now, None, r.s_active)
        }
        superblocks::Transition::Suspect => {}
    }
}

/// The shared state.
#[pin_data(PinnedDrop)]
pub(crate) struct Ledger {
    #[pin]
    pub(crate) inner: HandlerLock<Inner>,
    /// The block device ledger, whose handlers take the lock only in
    /// their rare cases (see `bdevs`).
    pub(crate) bdevs: bdevs::Table,
    grace_ms: AtomicU32,
    audit_ms: AtomicU32,
    #[pin]
    work: Opaque<bindings::delayed_work>,
    running: AtomicBool,
    /// Set during the audit that seeds the ledger after load or reset.
    pub(crate) seeding: AtomicBool,
    /// Serializes audits, and holds their scratch space: the filesystem
    /// types walked.
    #[pin]
    pub(crate) audit_lock: Mutex<KVVec<usize>>,
    /// What the audits keep of their walks.
    pub(crate) walks: Walks,
    /// Why audits cannot walk the superblocks, if they cannot.
    walk_error: Option<Unavailable>,
    #[pin]
    notifier: Opaque<bindings::notifier_block>,
    /// The `modules=` names as written, for reading back (empty: all).
    #[pin]
    pub(crate) filter: Mutex<([[u8; MODNAME]; modules::MAX_FILTER], usize)>,
    /// Where the walk of filesystem types starts: sysfs, the first type
    /// registered at boot (by `mnt_init`), built in and never unregistered.
    first_fs_type: *mut bindings::file_system_type,
}

/// What the audits keep of their walks of the superblocks.
#[derive(Default)]
pub(crate) struct Walks {
    /// When the last walk started (ns since boot), 0 before the first.
    last: AtomicU64,
    /// Filesystem types the last walk went through.
    types: AtomicU32,
    /// Periodic audits since the last walk (see `audit::walk_due`).
    pub(crate) skipped: AtomicU32,
    /// `inner`'s count of handlers that gave up on the lock, when the last
    /// walk started.
    pub(crate) contended: AtomicU64,
    /// The probes' missed hits, when the last walk started.
    pub(crate) missed: AtomicU64,
    /// Whether every superblock role has a probe armed (`audit::armed`).
    pub(crate) sb_armed: AtomicBool,
}

static LEDGER: AtomicPtr<Ledger> = AtomicPtr::new(core::ptr::null_mut());

/// The published ledger, if the module is up.
pub(crate) fn get() -> Option<&'static Ledger> {
    let p = LEDGER.load(Ordering::Acquire);
    // SAFETY: `p` is null or the ledger `Ledger::publish` published, which is
    // unpublished only after every probe is disarmed and the audit work is
    // cancelled, i.e. after every user of this reference is gone.
    unsafe { p.as_ref() }
}

impl Ledger {
    /// Allocates the ledger with its tables at their documented capacities.
    /// `audit` is the periodic audit's work function (see `audit`), which
    /// finds the ledger with [`get`].
    pub(crate) fn new(audit: bindings::work_func_t) -> Result<impl PinInit<Self, Error>> {
        let inner = Inner {
            sbs: superblocks::Table::new()?,
            events: events::Ring::new()?,
            // SAFETY: The one `Locked`, kept in the state the ledger's lock
            // protects.
            bdevs: unsafe { bdevs::Locked::new() },
            zfs: zfs::Table::new()?,
        };
        // SAFETY: The name is a valid C string; sysfs is built in, so this
        // neither loads a module nor takes a reference that needs dropping.
        let first_fs_type = unsafe { bindings::get_fs_type(c_str!("sysfs").as_char_ptr()) };
        if first_fs_type.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: Called once, from module init (process context).
        let walk_error = Unavailable::from_errno(unsafe { bindings::rl_find_sb_lock() });
        if let Some(e) = walk_error {
            pr_warn!(
                "sb_lock not found ({}): superblocks are tracked by probes only, without audits\n",
                e.to_errno()
            );
        }
        let types = KVVec::from_elem(0usize, superblocks::MAX_TYPES, GFP_KERNEL)?;
        let bdevs = bdevs::Table::new()?;
        Ok(try_pin_init!(Self {
            inner <- HandlerLock::new(inner, c_str!("refledger:ledger")),
            bdevs,
            grace_ms: AtomicU32::new(DEFAULT_GRACE_MS),
            audit_ms: AtomicU32::new(DEFAULT_AUDIT_MS),
            // SAFETY: `INIT_DELAYED_WORK` initializes the whole struct.
            work <- Opaque::ffi_init(|p: *mut bindings::delayed_work| unsafe {
                bindings::rl_init_delayed_work(p, audit)
            }),
            running: AtomicBool::new(false),
            seeding: AtomicBool::new(false),
            audit_lock <- new_mutex!(types, "refledger:audit"),
            walks: Walks::default(),
            walk_error,
            filter <- new_mutex!(([[0; MODNAME]; modules::MAX_FILTER], 0), "refledger:filter"),
            // SAFETY: A zeroed notifier_block is valid; the callback is set
            // here and the block is registered by `start_notifier`.
            notifier <- Opaque::ffi_init(|p: *mut bindings::notifier_block| unsafe {
                core::ptr::write_bytes(p, 0, 1);
                (*p).notifier_call = Some(notifier::module_notify);
            }),
            first_fs_type,
        }? Error))
    }

    /// Publishes the ledger to probe handlers.  The ledger must stay pinned
    /// where it is until it is dropped, which unpublishes it.
    pub(crate) fn publish(self: Pin<&Self>) {
        LEDGER.store(
            core::ptr::from_ref::<Self>(&*self).cast_mut(),
            Ordering::Release,
        );
    }

    /// Registers the module notifier.
    pub(crate) fn start_notifier(&self) {
        // SAFETY: `notifier` is initialized and lives as long as `self`;
        // `Drop` unregisters it.
        unsafe { bindings::register_module_notifier(self.notifier.get()) };
    }

    /// Starts the periodic audit: queues the first run.
    pub(crate) fn start_audit(&self) {
        self.running.store(true, Ordering::Release);
        self.queue_audit();
    }

    /// Whether the periodic audit runs (until [`Ledger::stop_audit`]).
    pub(crate) fn audit_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Queues the next run of the periodic audit, `audit_ms` from now.
    pub(crate) fn queue_audit(&self) {
        // SAFETY: `work` was initialized in `new` and lives as long as
        // `self`; `Drop` cancels it before `self` goes away.
        unsafe { bindings::rl_queue_delayed_work_ms(self.work.get(), self.audit_ms()) };
    }

    /// The first filesystem type, where the audit's walk starts.
    pub(crate) fn first_fs_type(&self) -> *mut bindings::file_system_type {
        self.first_fs_type
    }

    /// Notes an audit that started at `start` and walked `types` types.
    pub(crate) fn note_audit(&self, start: u64, types: u32) {
        self.walks.last.store(start, Ordering::Relaxed);
        self.walks.types.store(types, Ordering::Relaxed);
    }

    /// When the last audit started, the types it walked, and why audits
    /// cannot walk superblocks, if they cannot.
    pub(crate) fn audit_info(&self) -> (u64, u32, Option<Unavailable>) {
        (
            self.walks.last.load(Ordering::Relaxed),
            self.walks.types.load(Ordering::Relaxed),
            self.walk_error,
        )
    }

    /// The grace period in milliseconds.
    pub(crate) fn grace_ms(&self) -> u32 {
        self.grace_ms.load(Ordering::Relaxed)
    }

    /// The grace period in nanoseconds.
    pub(crate) fn grace_ns(&self) -> u64 {
        u64::from(self.grace_ms()) * 1_000_000
    }

    /// The audit period in milliseconds.
    pub(crate) fn audit_ms(&self) -> u32 {
        self.audit_ms.load(Ordering::Relaxed)
    }

    /// Sets the grace period; `control` checked the range.
    pub(crate) fn set_grace_ms(&self, ms: u32) {
        self.grace_ms.store(ms, Ordering::Relaxed);
    }

    /// Sets the audit period; `control` checked the range.
    pub(crate) fn set_audit_ms(&self, ms: u32) {
        self.audit_ms.store(ms, Ordering::Relaxed);
    }

    /// The generation of the record of the live superblock at `sb` (the
    /// part of its id after the dot), or 0 when it has none.
    pub(crate) fn sb_gen(&self, sb: usize) -> u32 {
        self.inner.lock().sbs.gen(sb)
    }

    /// A copy of superblock record `i`, without its evidence, if the slot is
    /// used: for readers that print only the record.
    pub(crate) fn sb_record(&self, i: usize) -> Option<superblocks::Record> {
        let inner = self.inner.lock();
        let r = &inner.sbs.recs[i];
        r.used.then_some(*r)
    }

    /// How many superblock slots a reader walks (see
    /// [`superblocks::Table::slots`]).
    pub(crate) fn sb_slots(&self) -> usize {
        self.inner.lock().sbs.slots()
    }

    /// Stops the periodic audit; on return none runs.
    pub(crate) fn stop_audit(&self) {
        self.running.store(false, Ordering::Release);
        // SAFETY: `work` was initialized in `new`.  This waits for a running
        // audit and stops one that re-queues itself.
        unsafe { bindings::cancel_delayed_work_sync(self.work.get()) };
    }

    /// Unregisters the module notifier; on return no notifier call runs.
    pub(crate) fn stop_notifier(&self) {
        // SAFETY: `notifier` was registered by `start_notifier` (unregistering
        // one that is not registered just fails).  This waits for a running
        // notifier call.
        unsafe { bindings::unregister_module_notifier(self.notifier.get()) };
    }
}

#[pinned_drop]
impl PinnedDrop for Ledger {
    fn drop(self: Pin<&mut Self>) {
        self.stop_audit();
        self.stop_notifier();
        LEDGER.store(core::ptr::null_mut(), Ordering::Release);
    }
}

// SAFETY: The delayed work is only touched through the workqueue API, which
// is thread-safe; everything else is atomic or behind the spinlock.
unsafe impl Sync for Ledger {}
// SAFETY: As above; nothing is tied to a thread.
unsafe impl Send for Ledger {}

/// The longest module name `modules=` takes.
pub(crate) const MODNAME: usize = 55;
