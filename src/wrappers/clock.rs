// SPDX-License-Identifier: GPL-2.0

//! The handlers' clock: nanoseconds since boot on the monotonic clock, read
//! from the TSC.
//!
//! Handlers take the time of every open, close, mount and release, and
//! `ktime_get_mono_fast_ns` with our call to it costs a probe hit 46
//! instructions (`make bench`'s profile): a latch, an indirect call to the
//! clocksource's `read` (a retpoline on Debian's kernel), an ordered
//! `rdtsc` and the timekeeper's scaling.  The TSC scaled from an anchor
//! gives the same time in 24: [`sync`] reads the TSC and the monotonic
//! clock together, with the kernel's TSC frequency (`tsc_khz`, which
//! `sched_clock` and so dmesg also use), and [`now_ns`] adds the cycles
//! since, scaled.
//!
//! How far it strays from the monotonic clock: the difference between
//! `tsc_khz` and the rate the monotonic clock runs at (its calibration
//! error, and NTP's correction: typically a few parts per million, at most
//! about 500) over the time since the anchor.  Every audit period ends by
//! taking a new anchor (one that leaves out its walk takes just that), so that is under a millisecond at the default `audit_ms`
//! (1 s) and tens of milliseconds at the longest (60 s).  Times step by as
//! much at each new anchor, forwards or back, so two of them taken a moment
//! apart on either side of it may come out of order; the audit takes its
//! new anchor only once it has compared its times (see `join::audit`), and
//! every other use of a difference of times saturates.  The `rdtsc` is
//! unordered: it may run a few instructions early, nanoseconds, which is
//! less than the TSCs of two CPUs may differ.
//!
//! [`now_ns`] reads the monotonic clock itself (`ktime_get_mono_fast_ns`,
//! NMI-safe) when there is no anchor: before the first, without a TSC, or
//! once the kernel has found the TSC unstable (the next [`sync`] drops the
//! anchor).  It does too when the TSC reads below the anchor (another CPU's
//! TSC slightly behind, or the TSC reset by a suspend since the last audit)
//! or far above it (an audit held up for minutes).  After a suspend that
//! keeps the TSC running (s2idle), times run ahead of the monotonic clock,
//! which stopped, until the next audit, and then step back.  The TSC is
//! trusted as far as the kernel trusts it for `sched_clock`: a TSC that the
//! kernel has not found unstable but that changes under it (a virtual
//! machine migrated to a host of another TSC rate) is caught only by the
//! bounds above, and strays until the next anchor.
//!
//! The anchor is published through a latch, as the kernel's
//! `raw_write_seqcount_latch` does: two copies and a sequence count whose
//! low bit says which copy is stable, so a reader in NMI context never waits
//! for a writer it interrupted.

use crate::wrappers::bindings;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Cycles past the anchor beyond which the TSC is not scaled: 2^40, at
/// least 3.6 minutes at 5 GHz, far beyond the longest audit period (60 s).
const MAX_CYCLES: u64 = 1 << 40;

/// One copy of the anchor.
struct Anchor {
    tsc: AtomicU64,
    ns: AtomicU64,
    /// Nanoseconds per cycle, in 32.32 fixed point; 0 when there is no
    /// anchor.
    mult: AtomicU64,
}

impl Anchor {
    const fn new() -> Self {
        Self {
            tsc: AtomicU64::new(0),
            ns: AtomicU64::new(0),
            mult: AtomicU64::new(0),
        }
    }
}

/// Its low bit names the copy readers use: the other one may be changing.
static SEQ: AtomicU32 = AtomicU32::new(0);
static ANCHORS: [Anchor; 2] = [Anchor::new(), Anchor::new()];
/// Held by the one [`sync`] writing.
static WRITING: AtomicBool = AtomicBool::new(false);

/// Nanoseconds since boot, on the monotonic clock.  Any context, NMI
/// included.
///
/// Out of line: inlined, it made `Evidence::capture_shallow` too large to
/// be inlined itself, which cost more than the call it saved (measured).
#[inline(never)]
pub(crate) fn now_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let (tsc0, ns0, mult) = loop {
            let seq = SEQ.load(Ordering::Acquire);
            let a = &ANCHORS[(seq & 1) as usize];
            let v = (
                a.tsc.load(Ordering::Relaxed),
                a.ns.load(Ordering::Relaxed),
                a.mult.load(Ordering::Relaxed),
            );
            // Pairs with the fence after the writer's count: if `v` holds
            // anything written after it, the count below has moved.
            fence(Ordering::Acquire);
            if SEQ.load(Ordering::Relaxed) == seq {
                break v;
            }
        };
        if mult != 0 {
            #[allow(unused_unsafe)]
            // SAFETY: `rdtsc` reads the time-stamp counter, which every
            // x86-64 CPU has; it has no side effects.  Unordered (see the
            // module's documentation).
            let tsc = unsafe { core::arch::x86_64::_rdtsc() };
            let d = tsc.wrapping_sub(tsc0);
            // Also false when the TSC is below the anchor (`d` wraps).
            if d < MAX_CYCLES {
                // `d` is below 2^40 and `mult` below 2^52 (see `sync`):
                // the product fits in 92 bits, the result in 60.
                return ns0.wrapping_add(((u128::from(d) * u128::from(mult)) >> 32) as u64);
            }
        }
    }
    // SAFETY: `rl_ktime_get_ns` is `ktime_get_mono_fast_ns`, which takes no
    // lock and retries no seqcount a writer could be stuck in, so it may be
    // called from any context, NMI included (an int3 kprobe handler's).
    unsafe { bindings::rl_ktime_get_ns() }
}

/// Takes a new anchor, or drops it if the TSC cannot be used (any more):
/// at load, before any handler runs, and at the end of every audit and
/// every audit period.
/// Process context.
/// A call while another is writing does nothing: that one is taking a new
/// anchor already.
pub(crate) fn sync() {
    if WRITING.swap(true, Ordering::Acquire) {
        return;
    }
    let (mut tsc, mut ns, mut khz) = (0u64, 0u64, 0u32);
    // SAFETY: Process context, as `rl_clock_anchor` requires; the pointers
    // are to locals.
    let ok = unsafe { bindings::rl_clock_anchor(&mut tsc, &mut ns, &mut khz) };
    // Nanoseconds per millisecond over cycles per millisecond, in 32.32
    // fixed point: below 2^52 for any TSC of 1 kHz or more.
    let mult = if ok && khz != 0 {
        (1_000_000u64 << 32) / u64::from(khz)
    } else {
        0
    };
    // Readers move to copy 1 while copy 0 changes, then back to copy 0.
    for a in &ANCHORS {
        // Copy 0's new values are visible before the count that sends
        // readers back to it.
        fence(Ordering::Release);
        SEQ.fetch_add(1, Ordering::Relaxed);
        // The count is visible before anything written to the copy it
        // takes readers away from.
        fence(Ordering::Release);
        a.tsc.store(tsc, Ordering::Relaxed);
        a.ns.store(ns, Ordering::Relaxed);
        a.mult.store(mult, Ordering::Relaxed);
    }
    WRITING.store(false, Ordering::Release);
}
