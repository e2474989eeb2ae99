// SPDX-License-Identifier: GPL-2.0

//! A spinlock that probe handlers can take from any context, and that
//! process context can take without being deadlocked by them.
//!
//! A kprobe handler runs wherever the probed function runs.  On a kernel
//! without the function tracer a kprobe starts as an int3 breakpoint whose
//! handler runs in NMI context (x86's `exc_int3` enters through
//! `irqentry_nmi_enter`); once optimized into a jump (optprobes), or on a
//! kernel with the function tracer (ftrace-based kprobes), it runs in the
//! probed function's own context, interrupts possibly on.  Masking interrupts does not keep such a handler
//! out, so a handler that waited for a lock could wait for the very
//! critical section it interrupted, on its own CPU, forever; and lockdep
//! rightly reports a blocking lock taken both in that context and outside
//! it.  So:
//!
//! - Process context ([`HandlerLock::lock`]) takes the lock with interrupts
//!   off, so no interrupt handler on the same CPU can hit a probe while it
//!   is held.
//! - Probe handlers ([`HandlerLock::try_lock`]) never wait for the lock's
//!   holder on their own CPU: they record which CPU holds the lock, give up
//!   at once if it is theirs, and otherwise retry a bounded number of
//!   times.  What a handler gives up is counted ([`HandlerLock::contended`])
//!   and shown with the ledger's other drop counters.
//!
//! Holders keep the lock for a bounded, short time (one record, or one
//! bounded table operation), which is what makes the retry bound enough in
//! practice.  In NMI context the bound is much smaller: an NMI that spins
//! holds up its CPU entirely.

use crate::wrappers::bindings;
use core::{
    cell::UnsafeCell,
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicI32, AtomicU64, Ordering},
};
use kernel::{ffi, prelude::*, types::Opaque};

/// How many times a handler tries a lock held on another CPU before it
/// gives up.  Each try is a few nanoseconds; holders keep the lock for a
/// few microseconds at most.
const HANDLER_TRIES: u32 = 1 << 16;
/// The same, for a handler in NMI context (an int3 kprobe): it gives up
/// sooner, since nothing else runs on its CPU while it spins, and since it
/// may have interrupted its own CPU between a lock and the `owner` store.
const NMI_TRIES: u32 = 1 << 10;

/// A spinlock around `T`, for data shared by probe handlers and process
/// context.
///
/// # Invariants
///
/// `lock` is an initialized `spinlock_t`.  `data` is only accessed through a
/// [`Guard`], which exists only while `lock` is held.  `owner` is the CPU
/// that holds `lock`, or -1, whenever `lock` is not held.
#[pin_data]
pub(crate) struct HandlerLock<T> {
    #[pin]
    lock: Opaque<bindings::spinlock_t>,
    owner: AtomicI32,
    contended: AtomicU64,
    data: UnsafeCell<T>,
}

// SAFETY: The lock serializes every access to `data`, so the lock can be
// shared between threads when `T` can be sent between them.
unsafe impl<T: Send> Sync for HandlerLock<T> {}
// SAFETY: Nothing in the lock is tied to a thread.
unsafe impl<T: Send> Send for HandlerLock<T> {}

impl<T> HandlerLock<T> {
    /// A new lock around `data`, with lockdep class `name`.
    pub(crate) fn new(data: T, name: &'static CStr) -> impl PinInit<Self> {
        // INVARIANT: `spin_lock_init` initializes `lock`; no CPU holds it.
        pin_init!(Self {
            // SAFETY: `p` points to the `spinlock_t` being initialized, and
            // `name` lives forever, as lockdep keeps it.
            lock <- Opaque::ffi_init(|p: *mut bindings::spinlock_t| unsafe {
                bindings::rl_spin_lock_init(p, name.as_char_ptr())
            }),
            owner: AtomicI32::new(-1),
            contended: AtomicU64::new(0),
            data: UnsafeCell::new(data),
        })
    }

    /// The guard of the lock, just taken by `cpu`, the current CPU.
    fn guard(&self, cpu: i32, flags: ffi::c_ulong) -> Guard<'_, T> {
        // INVARIANT: The lock is held; `owner` names its holder until
        // `Guard::drop` resets it, before unlocking.
        self.owner.store(cpu, Ordering::Relaxed);
        Guard { lock: self, flags }
    }

    /// Takes the lock from process context, spinning with interrupts off.
    /// Never call this from a probe handler: use [`Self::try_lock`].
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        // SAFETY: `lock` is initialized (type invariant).
        let flags = unsafe { bindings::rl_spin_lock_irqsave(self.lock.get()) };
        // SAFETY: Interrupts are off and the lock is held, so the CPU cannot
        // change under the caller.
        let cpu = unsafe { bindings::rl_raw_smp_processor_id() };
        self.guard(cpu, flags)
    }

    /// Takes the lock from a probe handler, or gives up (and counts it):
    /// at once when the holder is this CPU (the handler interrupted it),
    /// else after [`HANDLER_TRIES`] tries ([`NMI_TRIES`] in NMI context).
    pub(crate) fn try_lock(&self) -> Option<Guard<'_, T>> {
        // SAFETY: Probe handlers run with preemption off, so the CPU id
        // stays right while it is used.
        let cpu = unsafe { bindings::rl_raw_smp_processor_id() };
        // The bound is read only once a try has failed: an uncontended lock
        // (nearly every call) is taken at the first.
        let mut tries = u32::MAX;
        let mut tried = 0;
        loop {
            if self.owner.load(Ordering::Relaxed) == cpu {
                break;
            }
            let mut flags: ffi::c_ulong = 0;
            // SAFETY: `lock` is initialized (type invariant); `flags` is
            // written by the call.
            if unsafe { bindings::rl_spin_trylock_irqsave(self.lock.get(), &mut flags) } {
                return Some(self.guard(cpu, flags));
            }
            if tried == 0 {
                // SAFETY: `in_nmi()` reads the preempt count; any context.
                tries = if unsafe { bindings::rl_in_nmi() } {
                    NMI_TRIES
                } else {
                    HANDLER_TRIES
                };
            }
            tried += 1;
            if tried >= tries {
                break;
            }
            core::hint::spin_loop();
        }
        self.contended.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// How many times a probe handler gave up the lock.
    pub(crate) fn contended(&self) -> u64 {
        self.contended.load(Ordering::Relaxed)
    }
}

/// Access to the data of a held [`HandlerLock`]; unlocks when dropped.
pub(crate) struct Guard<'a, T> {
    lock: &'a HandlerLock<T>,
    flags: ffi::c_ulong,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The guard exists only while the lock is held, which gives
        // it exclusive access to the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As for `deref`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(-1, Ordering::Relaxed);
        // SAFETY: The guard holds the lock, taken with these saved flags.
        unsafe { bindings::rl_spin_unlock_irqrestore(self.lock.lock.get(), self.flags) };
    }
}
