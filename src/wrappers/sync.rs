// SPDX-License-Identifier: GPL-2.0

//! A spinlock that probe handlers can take from any context, and that
//! process context can take without being deadlocked by them.
//!
//! A kprobe handler runs wherever the probed function runs.  On a kernel
//! without the function tracer a kprobe starts as an int3 breakpoint whose
//! handler runs in NMI context (x86's `exc_int3` enters through
//! `irqentry_nmi_enter`); once optimized into a jump (optprobes), or on a
//! kernel with the function tracer (ftrace-based kprobes), it runs in the
//! probed function's own context, interrupts possibly on.  Masking
//! interrupts does not keep such a handler out, so a handler that waited
//! for a lock could wait for the very critical section it interrupted, on
//! its own CPU, forever; and lockdep rightly reports a blocking lock taken
//! both in that context and outside it.  So:
//!
//! - The lock is one word holding the CPU that holds it, taken with a
//!   compare-and-swap, so that a handler tells at once whether its own CPU
//!   holds it.  Every holder keeps interrupts off, so no interrupt handler
//!   on the same CPU can hit a probe while it is held, and no interrupt
//!   lengthens a hold that others wait for.
//! - Process context ([`HandlerLock::lock`]) spins for it, and tells
//!   lockdep, which checks its order against the kernel's locks (the audit
//!   takes it under `sb_lock`).
//! - Probe handlers ([`HandlerLock::try_lock`]) never wait for the lock's
//!   holder on their own CPU: they give up at once if it is theirs, and
//!   otherwise retry a bounded number of times.  What a handler gives up is
//!   counted ([`HandlerLock::contended`]) and shown with the ledger's other
//!   drop counters.  They do not tell lockdep, whose rules are for locks
//!   that wait.
//!
//! The kernel's `spinlock_t` served until #16: a handler's hold went
//! through four calls (`spin_trylock_irqsave` and `spin_unlock_irqrestore`,
//! and the out-of-line `_raw_` functions behind them, with the preempt
//! count's updates) and a fifth for the CPU number; now it makes two
//! (`rl_lock_try`, `rl_unlock`), six holds per tmpfs mount and unmount.
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
/// sooner, since nothing else runs on its CPU while it spins.
const NMI_TRIES: u32 = 1 << 10;

/// A spinlock around `T`, for data shared by probe handlers and process
/// context.
///
/// # Invariants
///
/// `owner` is the CPU that holds the lock, or -1 when nobody does; only a
/// compare-and-swap from -1 takes it, and only the holder's [`Guard`]
/// stores -1.  `data` is only accessed through a [`Guard`].  `dep_map` is
/// initialized.
#[pin_data]
pub(crate) struct HandlerLock<T> {
    owner: AtomicI32,
    contended: AtomicU64,
    /// Lockdep's view of the process-context holders.
    #[pin]
    dep_map: Opaque<bindings::lockdep_map>,
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
        // INVARIANT: No CPU holds the lock; `rl_lockdep_init` initializes
        // `dep_map`.
        pin_init!(Self {
            owner: AtomicI32::new(-1),
            contended: AtomicU64::new(0),
            // SAFETY: `p` points to the map being initialized, and `name`
            // lives forever, as lockdep keeps it.
            dep_map <- Opaque::ffi_init(|p: *mut bindings::lockdep_map| unsafe {
                bindings::rl_lockdep_init(p, name.as_char_ptr())
            }),
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the lock from process context, spinning with interrupts off.
    /// Never call this from a probe handler: use [`Self::try_lock`].
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        // SAFETY: `dep_map` is initialized (type invariants); interrupts
        // are restored by `Guard::drop`.
        let flags = unsafe { bindings::rl_lock_irqsave(self.dep_map.get()) };
        // SAFETY: Interrupts are off, so the CPU cannot change under the
        // caller.
        let cpu = unsafe { bindings::rl_raw_smp_processor_id() };
        // No handler on this CPU can hold the lock: interrupts are off, and
        // an NMI's handler lets go before the NMI returns.
        while self
            .owner
            .compare_exchange_weak(-1, cpu, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Waits with plain reads, which keep the word's cache line
            // shared, until the holder lets go.
            while self.owner.load(Ordering::Relaxed) != -1 {
                core::hint::spin_loop();
            }
        }
        // INVARIANT: Taken by the compare-and-swap above, interrupts off
        // and lockdep told by `rl_lock_irqsave`.
        Guard {
            lock: self,
            flags,
            told_lockdep: true,
        }
    }

    /// Takes the lock from a probe handler, or gives up (and counts it):
    /// at once when the holder is this CPU (the handler interrupted it),
    /// else after [`HANDLER_TRIES`] tries ([`NMI_TRIES`] in NMI context).
    pub(crate) fn try_lock(&self) -> Option<Guard<'_, T>> {
        // The bound is read only once a try has failed: an uncontended lock
        // (nearly every call) is taken at the first.
        let mut tries = u32::MAX;
        let mut tried = 0;
        loop {
            let mut flags: ffi::c_ulong = 0;
            // SAFETY: `owner` is the lock word, accessed only atomically;
            // `flags` is written by the call.  Probe handlers run with
            // preemption off, so the CPU it compares with stays right.
            match unsafe { bindings::rl_lock_try(self.owner.as_ptr(), &mut flags) } {
                bindings::rl_lock_try_result_RL_LOCK_TAKEN => {
                    // INVARIANT: Taken by `rl_lock_try`, interrupts off.
                    return Some(Guard {
                        lock: self,
                        flags,
                        told_lockdep: false,
                    });
                }
                bindings::rl_lock_try_result_RL_LOCK_MINE => break,
                _ => {}
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
///
/// # Invariants
///
/// The guard's CPU holds `lock` (its `owner`) for the guard's life, with
/// interrupts off, to be restored from `flags`.  `told_lockdep` if it was
/// taken by [`HandlerLock::lock`], which told lockdep.
pub(crate) struct Guard<'a, T> {
    lock: &'a HandlerLock<T>,
    flags: ffi::c_ulong,
    told_lockdep: bool,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The guard exists only while the lock is held, which gives
        // it exclusive access to the data (type invariants).
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
        let l = self.lock;
        if self.told_lockdep {
            // Release: what the holder wrote is seen by the next holder,
            // whose compare-and-swap acquires.
            l.owner.store(-1, Ordering::Release);
            // SAFETY: `lock` took the lock with these flags and told
            // lockdep (type invariants); `dep_map` is initialized.
            unsafe { bindings::rl_unlock_irqrestore(l.dep_map.get(), self.flags) };
        } else {
            // SAFETY: This CPU holds the lock, taken by `rl_lock_try` with
            // these flags (type invariants); it stores -1 with release.
            unsafe { bindings::rl_unlock(l.owner.as_ptr(), self.flags) };
        }
    }
}
