// SPDX-License-Identifier: GPL-2.0

//! The ledger: the state every probe handler and debugfs file shares, its
//! lock, its settings and the periodic audit.
//!
//! Probe handlers find the ledger through a global pointer that is set before
//! any probe is armed and cleared only after every probe is disarmed (see
//! `RefLedger` in the crate root), so a handler never sees a freed ledger.

use crate::{
    bdevs, bindings, compat,
    debugfs::{seq_print, SeqFile, Show, Store},
    events, modules,
    probes::ProbeSet,
    superblocks,
    sync::HandlerLock,
    zfs,
};
use core::{
    ffi::c_void,
    sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering},
};
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
    /// The block device ledger.
    pub(crate) bdevs: bdevs::Table,
    /// The OpenZFS ledger.
    pub(crate) zfs: zfs::Table,
}

/// The shared state.
#[pin_data(PinnedDrop)]
pub(crate) struct Ledger {
    #[pin]
    pub(crate) inner: HandlerLock<Inner>,
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
    /// When the last audit started (ns since boot), 0 before the first.
    last_audit: AtomicU64,
    /// Filesystem types the last audit walked.
    audit_types: AtomicU32,
    /// Why audits cannot walk the superblocks (a negative errno), or 0.
    walk_error: AtomicI32,
    #[pin]
    notifier: Opaque<bindings::notifier_block>,
    /// The `modules=` names as written, for reading back (empty: all).
    #[pin]
    filter: Mutex<([[u8; MODNAME]; modules::MAX_FILTER], usize)>,
    /// Where the walk of filesystem types starts: sysfs, the first type
    /// registered at boot (by `mnt_init`), built in and never unregistered.
    first_fs_type: *mut bindings::file_system_type,
    /// Tells the audit whether holders explain a superblock's references.
    pub(crate) explain: superblocks::Explain,
    /// Asks for the holders of a superblock whose unmount was refused to be
    /// captured (any context).
    pub(crate) busy: fn(usize),
}

static LEDGER: AtomicPtr<Ledger> = AtomicPtr::new(core::ptr::null_mut());

/// The probes, for the module notifier to arm and disarm those that live in
/// a module.  Published after they are built, cleared (with the notifier
/// unregistered first) before they are dropped.
static PROBES: AtomicPtr<ProbeSet> = AtomicPtr::new(core::ptr::null_mut());

/// Publishes the probe set to the module notifier, or (with `None`)
/// withdraws it.  The caller keeps a published set alive until it withdraws
/// it after [`Ledger::stop_notifier`].
pub(crate) fn publish_probes(p: Option<&ProbeSet>) {
    PROBES.store(
        p.map_or(core::ptr::null_mut(), |p| core::ptr::from_ref(p).cast_mut()),
        Ordering::Release,
    );
}

/// The published ledger, if the module is up.
pub(crate) fn get() -> Option<&'static Ledger> {
    let p = LEDGER.load(Ordering::Acquire);
    // SAFETY: `p` is null or the ledger `Ledger::start` published, which is
    // unpublished only after every probe is disarmed and the audit work is
    // cancelled, i.e. after every user of this reference is gone.
    unsafe { p.as_ref() }
}

impl Ledger {
    /// Allocates the ledger with its tables at their documented capacities.
    /// `explain` is the holder walk the audit asks before it flags a
    /// superblock; `busy` captures the holders of one whose unmount was
    /// refused.  Both are joins the ledger's tables do not import.
    pub(crate) fn new(
        explain: superblocks::Explain,
        busy: fn(usize),
    ) -> Result<impl PinInit<Self, Error>> {
        let inner = Inner {
            sbs: superblocks::Table::new()?,
            events: events::Ring::new()?,
            bdevs: bdevs::Table::new()?,
            zfs: zfs::Table::new()?,
        };
        // SAFETY: The name is a valid C string; sysfs is built in, so this
        // neither loads a module nor takes a reference that needs dropping.
        let first_fs_type = unsafe { bindings::get_fs_type(c_str!("sysfs").as_char_ptr()) };
        if first_fs_type.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: Called once, from module init (process context).
        let walk_error = unsafe { bindings::rl_find_sb_lock() };
        if walk_error != 0 {
            pr_warn!(
                "sb_lock not found ({}): superblocks are tracked by probes only, without audits\n",
                walk_error
            );
        }
        let types = KVVec::from_elem(0usize, superblocks::MAX_TYPES, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            inner <- HandlerLock::new(inner, c_str!("refledger:ledger")),
            grace_ms: AtomicU32::new(DEFAULT_GRACE_MS),
            audit_ms: AtomicU32::new(DEFAULT_AUDIT_MS),
            // SAFETY: `INIT_DELAYED_WORK` initializes the whole struct.
            work <- Opaque::ffi_init(|p: *mut bindings::delayed_work| unsafe {
                bindings::rl_init_delayed_work(p, Some(audit_work))
            }),
            running: AtomicBool::new(false),
            seeding: AtomicBool::new(false),
            audit_lock <- new_mutex!(types, "refledger:audit"),
            last_audit: AtomicU64::new(0),
            audit_types: AtomicU32::new(0),
            walk_error: AtomicI32::new(walk_error),
            filter <- new_mutex!(([[0; MODNAME]; modules::MAX_FILTER], 0), "refledger:filter"),
            // SAFETY: A zeroed notifier_block is valid; the callback is set
            // here and the block is registered in `start_audit`.
            notifier <- Opaque::ffi_init(|p: *mut bindings::notifier_block| unsafe {
                core::ptr::write_bytes(p, 0, 1);
                (*p).notifier_call = Some(module_notify);
            }),
            first_fs_type,
            explain,
            busy,
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

    /// Registers the module notifier, runs a first audit and starts the
    /// periodic one.
    pub(crate) fn start_audit(&self) {
        // SAFETY: `notifier` is initialized and lives as long as `self`;
        // `Drop` unregisters it.
        unsafe { bindings::register_module_notifier(self.notifier.get()) };
        self.seed(false);
        self.running.store(true, Ordering::Release);
        self.queue_audit();
    }

    fn queue_audit(&self) {
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
        self.last_audit.store(start, Ordering::Relaxed);
        self.audit_types.store(types, Ordering::Relaxed);
    }

    /// When the last audit started, the types it walked, and why audits
    /// cannot walk superblocks (a negative errno) or 0.
    pub(crate) fn audit_info(&self) -> (u64, u32, i32) {
        (
            self.last_audit.load(Ordering::Relaxed),
            self.audit_types.load(Ordering::Relaxed),
            self.walk_error.load(Ordering::Relaxed),
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

    /// Forgets everything recorded, then audits to find the live superblocks
    /// again.
    fn reset(&self) {
        self.seed(true);
    }

    /// The first audit after load (or, with `clear`, after forgetting
    /// everything): lists the superblocks that already exist, without an
    /// event for each.
    fn seed(&self, clear: bool) {
        let mut types = self.audit_lock.lock();
        if clear {
            modules::reset();
            let mut inner = self.inner.lock();
            inner.sbs.clear();
            inner.events.clear();
            inner.bdevs.clear();
            inner.zfs.clear();
        }
        // Block devices open now, opened before load or reset: found
        // without the ledger's lock, merged under it.
        match bdevs::seed() {
            Ok(found) => self.inner.lock().bdevs.merge_seed(&found),
            Err(_) => pr_warn!("no memory to seed the block device ledger\n"),
        }
        self.seeding.store(true, Ordering::Relaxed);
        superblocks::audit_locked(self, &mut types);
        self.seeding.store(false, Ordering::Relaxed);
    }
}

impl Ledger {
    /// Stops the periodic audit; on return none runs.
    pub(crate) fn stop_audit(&self) {
        self.running.store(false, Ordering::Release);
        // SAFETY: `work` was initialized in `new`.  This waits for a running
        // audit and stops one that re-queues itself.
        unsafe { bindings::cancel_delayed_work_sync(self.work.get()) };
    }

    /// Unregisters the module notifier; on return no notifier call runs.
    pub(crate) fn stop_notifier(&self) {
        // SAFETY: `notifier` was registered in `start_audit` (unregistering
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

/// # Safety
///
/// Called by the module notifier chain with a module's state change.
unsafe extern "C" fn module_notify(
    _nb: *mut bindings::notifier_block,
    action: kernel::ffi::c_ulong,
    data: *mut c_void,
) -> kernel::ffi::c_int {
    let coming = action == bindings::module_state_MODULE_STATE_COMING as kernel::ffi::c_ulong;
    let going = action == bindings::module_state_MODULE_STATE_GOING as kernel::ffi::c_ulong;
    let live = action == bindings::module_state_MODULE_STATE_LIVE as kernel::ffi::c_ulong;
    if coming || going {
        modules::on_module_state(data.cast(), coming);
    }
    let probes = PROBES.load(Ordering::Acquire);
    if (live || going) && !probes.is_null() {
        // SAFETY: For module notifications `data` is the module, live for
        // the call; `probes` is published and outlives this call (see
        // `publish_probes`).
        unsafe {
            let name = CStr::from_char_ptr((*data.cast::<bindings::module>()).name.as_ptr());
            let probes = &*probes;
            if live {
                probes.arm_module(compat::cstr_bytes(name));
            } else {
                probes.disarm_module(compat::cstr_bytes(name));
            }
        }
    }
    bindings::NOTIFY_DONE as kernel::ffi::c_int
}

/// # Safety
///
/// Called by the workqueue for the ledger's `work`.
unsafe extern "C" fn audit_work(_work: *mut bindings::work_struct) {
    let Some(l) = get() else { return };
    superblocks::audit(l);
    if l.running.load(Ordering::Acquire) {
        l.queue_audit();
    }
}

// SAFETY: The delayed work is only touched through the workqueue API, which
// is thread-safe; everything else is atomic or behind the spinlock.
unsafe impl Sync for Ledger {}
// SAFETY: As above; nothing is tied to a thread.
unsafe impl Send for Ledger {}

/// The `control` file: reads show the settings, writes change them.
pub(crate) struct ControlFile;

impl Show for ControlFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = get().ok_or(ENODEV)?;
        seq_print!(
            m,
            "grace_ms={}\naudit_ms={}\nmodules=",
            l.grace_ms(),
            l.audit_ms()
        );
        let filter = l.filter.lock();
        if filter.1 == 0 {
            seq_print!(m, "all");
        }
        for (i, name) in filter.0.iter().take(filter.1).enumerate() {
            let len = name.iter().position(|&c| c == 0).unwrap_or(MODNAME);
            let name = core::str::from_utf8(&name[..len]).unwrap_or("?");
            seq_print!(m, "{}{}", if i == 0 { "" } else { "," }, name);
        }
        seq_print!(m, "\n");
        Ok(())
    }
}

/// A parsed control command.
pub(crate) enum Command<'a> {
    /// `grace_ms=N`
    Grace(u32),
    /// `audit_ms=N`
    Audit(u32),
    /// `reset`
    Reset,
    /// `audit`
    AuditNow,
    /// `modules=all` (`None`) or `modules=a,b`: up to
    /// `modules::MAX_FILTER` module names, checked.
    Modules(Option<&'a str>),
}

/// The longest module name `modules=` takes.
const MODNAME: usize = 55;

/// Parses one control write.  Surrounding white space is ignored; anything
/// but one valid command is `EINVAL`.
pub(crate) fn parse(input: &[u8]) -> Result<Command<'_>> {
    let s = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
    let number = |v: &str, range: core::ops::RangeInclusive<u32>| -> Result<u32> {
        let n: u32 = v.parse().map_err(|_| EINVAL)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(EINVAL)
        }
    };
    match s.split_once('=') {
        Some(("grace_ms", v)) => Ok(Command::Grace(number(v, GRACE_MS_RANGE)?)),
        Some(("audit_ms", v)) => Ok(Command::Audit(number(v, AUDIT_MS_RANGE)?)),
        Some(("modules", "all")) => Ok(Command::Modules(None)),
        Some(("modules", v)) => {
            let valid = |name: &str| {
                !name.is_empty()
                    && name.len() <= MODNAME
                    && name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            };
            if v.split(',').count() > modules::MAX_FILTER || !v.split(',').all(valid) {
                return Err(EINVAL);
            }
            Ok(Command::Modules(Some(v)))
        }
        None if s == "reset" => Ok(Command::Reset),
        None if s == "audit" => Ok(Command::AuditNow),
        _ => Err(EINVAL),
    }
}

impl Store for ControlFile {
    fn store(&self, input: &[u8]) -> Result {
        let l = get().ok_or(ENODEV)?;
        let cmd = match parse(input) {
            Ok(c) => c,
            Err(e) => {
                pr_info!(
                    "control: rejected; expected grace_ms=<{}..{}>, audit_ms=<{}..{}>, modules=all|<name,...>, reset or audit\n",
                    GRACE_MS_RANGE.start(),
                    GRACE_MS_RANGE.end(),
                    AUDIT_MS_RANGE.start(),
                    AUDIT_MS_RANGE.end()
                );
                return Err(e);
            }
        };
        match cmd {
            Command::Grace(ms) => l.grace_ms.store(ms, Ordering::Relaxed),
            Command::Audit(ms) => l.audit_ms.store(ms, Ordering::Relaxed),
            Command::Reset => l.reset(),
            Command::AuditNow => superblocks::audit(l),
            Command::Modules(None) => {
                let mut filter = l.filter.lock();
                filter.1 = 0;
                modules::set_filter(None);
            }
            Command::Modules(Some(v)) => {
                let mut filter = l.filter.lock();
                let mut list: [&[u8]; modules::MAX_FILTER] = [&[]; modules::MAX_FILTER];
                filter.1 = 0;
                for (i, name) in v.split(',').enumerate() {
                    filter.0[i] = [0; MODNAME];
                    filter.0[i][..name.len()].copy_from_slice(name.as_bytes());
                    list[i] = name.as_bytes();
                    filter.1 = i + 1;
                }
                modules::set_filter(Some(&list[..filter.1]));
            }
        }
        Ok(())
    }
}

/// The `events` file.
pub(crate) struct EventsFile;

impl Show for EventsFile {
    fn size_hint(&self) -> usize {
        // Up to `MAX_EVENTS` lines of about 200 bytes.
        events::MAX_EVENTS * 220
    }

    fn show(&self, m: &SeqFile) -> Result {
        let l = get().ok_or(ENODEV)?;
        superblocks::show_events(l, m)
    }
}
