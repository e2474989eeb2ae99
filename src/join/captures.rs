// SPDX-License-Identifier: GPL-2.0

//! Who held a superblock when its unmount was refused.
//!
//! `umount(2)` (and so `zpool export`) fails with `EBUSY` while something
//! holds the mount; by the time a user reads `leaks`, that process may be
//! gone.  The probe handler that sees the refusal asks for a capture
//! ([`capture_later`]); the holder walk runs soon after in process context
//! (an irq_work queues a work item: the handler may run in NMI context), and
//! its first holders are kept here, per superblock, for `leaks` to show.

use crate::{
    join::{
        holders::{show_holder, Holders},
        ledger,
    },
    wrappers::{
        bindings,
        clock::now_ns,
        debugfs::{Line, SeqFile},
    },
};
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use kernel::{new_mutex, prelude::*, sync::Mutex};

/// Refusals waiting for their walk; more at once are counted as dropped.
const PENDING_SLOTS: usize = 8;
/// Superblocks whose last capture is kept; the oldest makes room.
const MAX_CAPTURES: usize = 16;
/// Holders kept per capture, first found first.
const HOLDERS_KEPT: usize = 6;

/// Superblocks whose unmount was refused, waiting for a walk: a handler
/// claims a zero slot with a compare-and-swap; the work takes them back.
static PENDING: [AtomicUsize; PENDING_SLOTS] = [EMPTY_SLOT; PENDING_SLOTS];
/// An empty slot of [`PENDING`]: a `const` item, so the array can repeat it
/// (an inline `const` block needs a newer rustc than 6.12's minimum).
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Requests dropped because every slot was taken.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The captures, published while the table exists.
static TABLE: AtomicPtr<Captures> = AtomicPtr::new(core::ptr::null_mut());

/// What was found at one refusal.
#[derive(Clone, Copy)]
struct Capture {
    sb: usize,
    /// The generation of `sb`'s record then: another superblock at the
    /// same address later is not this one.
    gen: u32,
    time: u64,
    s_active: i32,
    mounts: u32,
    unexplained: Option<i64>,
    /// Holders found; the first [`HOLDERS_KEPT`] are in `kept`.
    found: u32,
    kept: [bindings::rl_holder; HOLDERS_KEPT],
}

/// The captures, one per superblock.
#[pin_data(PinnedDrop)]
pub(crate) struct Captures {
    #[pin]
    slots: Mutex<KVVec<Option<KBox<Capture>>>>,
}

impl Captures {
    /// An empty table.
    pub(crate) fn new() -> Result<impl PinInit<Self, Error>> {
        let mut v = KVVec::with_capacity(MAX_CAPTURES, GFP_KERNEL)?;
        for _ in 0..MAX_CAPTURES {
            v.push(None, GFP_KERNEL)?;
        }
        Ok(try_pin_init!(Self {
            slots <- new_mutex!(v, "refledger:captures"),
        }? Error))
    }

    /// Makes the table the one the work fills.  It must stay pinned until
    /// it is dropped, which withdraws it.
    pub(crate) fn publish(self: Pin<&Self>) {
        TABLE.store(core::ptr::from_ref(&*self).cast_mut(), Ordering::Release);
    }

    fn store(&self, c: KBox<Capture>) {
        let mut slots = self.slots.lock();
        // The same superblock's slot, else an empty one, else the oldest.
        let i = slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.sb == c.sb && s.gen == c.gen))
            .or_else(|| slots.iter().position(|s| s.is_none()))
            .or_else(|| (0..slots.len()).min_by_key(|&i| slots[i].as_ref().map_or(0, |s| s.time)));
        if let Some(i) = i {
            slots[i] = Some(c);
        }
    }

    /// The last capture of the superblock at `sb` with record `gen`, copied.
    fn of(&self, sb: usize, gen: u32) -> Option<KBox<Capture>> {
        let slots = self.slots.lock();
        let c = slots
            .iter()
            .flatten()
            .find(|c| c.sb == sb && c.gen == gen)?;
        KBox::new(**c, GFP_KERNEL).ok()
    }
}

#[pinned_drop]
impl PinnedDrop for Captures {
    fn drop(self: Pin<&mut Self>) {
        TABLE.store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: Called once the probes that kick are disarmed; it waits
        // for a work item that may still see the table.
        unsafe { bindings::rl_capture_stop() };
    }
}

/// Asks for the holders of the superblock at `sb` to be captured soon, in
/// process context.  Any context, NMI included: no lock, no allocation.
pub(crate) fn capture_later(sb: usize) {
    if sb == 0 {
        return;
    }
    for slot in PENDING.iter() {
        if slot
            .compare_exchange(0, sb, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: `irq_work_queue` may be called from any context.
            unsafe { bindings::rl_capture_kick() };
            return;
        }
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// The work item: walks for each pending superblock and keeps what it
/// found.
///
/// # Safety
///
/// Called by the work item `rl_capture_kick` queues (`src/holders.c`), in
/// process context, only while the module is loaded.
// `pub` and unmangled: it is called from C, by name.
#[allow(unreachable_pub)]
#[no_mangle]
pub unsafe extern "C" fn rl_capture_run() {
    let t = TABLE.load(Ordering::Acquire);
    for slot in PENDING.iter() {
        let sb = slot.swap(0, Ordering::AcqRel);
        if sb == 0 {
            continue;
        }
        let Some(l) = ledger::get() else { continue };
        // SAFETY: The table withdraws itself and then waits for this work
        // to finish before it is freed (`PinnedDrop`).
        let Some(table) = (unsafe { t.as_ref() }) else {
            continue;
        };
        let Ok(h) = Holders::of_sb(l.first_fs_type(), sb) else {
            continue;
        };
        let o = h.summary();
        if o.found == 0 {
            continue;
        }
        let mut kept = [bindings::rl_holder::default(); HOLDERS_KEPT];
        for (d, s) in kept.iter_mut().zip(h.holders()) {
            *d = *s;
        }
        if let Ok(c) = KBox::new(
            Capture {
                sb,
                gen: l.sb_gen(sb),
                time: now_ns(),
                s_active: o.s_active,
                mounts: o.mounts,
                unexplained: h.unexplained(),
                found: o.n,
                kept,
            },
            GFP_KERNEL,
        ) {
            table.store(c);
        }
    }
}

/// What `leaks` shows of the last refusal of the superblock at `sb`.
pub(crate) struct AtRefusal(KBox<Capture>);

impl AtRefusal {
    /// The last capture for the superblock at `sb` with record `gen`.
    pub(crate) fn of(sb: usize, gen: u32) -> Option<Self> {
        let t = TABLE.load(Ordering::Acquire);
        // SAFETY: Readers run while the debugfs files exist, which are
        // removed before the table is dropped.
        let table = unsafe { t.as_ref() }?;
        table.of(sb, gen).map(Self)
    }

    /// Appends ` held_at_refusal_by=COMM[PID]:KIND`, for the first task.
    pub(crate) fn held_by(&self, line: &mut Line) {
        let c = &self.0;
        let kept = &c.kept[..(c.found as usize).min(HOLDERS_KEPT)];
        if let Some(h) = kept.iter().find(|h| h.pid != 0) {
            line.str(" held_at_refusal_by=");
            crate::join::holders::held_by_token(line, h);
        }
    }

    /// Prints `  at_refusal t=... balance` and its holders, indented.
    pub(crate) fn show(&self, m: &SeqFile) {
        let c = &self.0;
        let mut line = Line::new();
        line.str("  at_refusal t=")
            .secs(c.time)
            .str(" s_active=")
            .i64(c.s_active.into())
            .str(" mounts=")
            .u64(c.mounts.into())
            .str(" unexplained=");
        match c.unexplained {
            Some(u) => line.i64(u),
            None => line.str("?"),
        };
        line.str(" holders=").u64(c.found.into()).end(m);
        for h in c.kept.iter().take(c.found as usize) {
            line.str("  at_refusal ");
            show_holder(&mut line, h);
            line.end(m);
        }
    }
}

/// Refusals whose capture was dropped because too many came at once.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}
