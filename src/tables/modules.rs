// SPDX-License-Identifier: GPL-2.0

//! The module ledger: refcount gets and puts by module and call site, from
//! the `module:module_get` and `module:module_put` tracepoints.
//!
//! These tracepoints fire on every `try_module_get`/`module_put` in the
//! system, in any context including interrupts, so the handlers are a lookup
//! in a lock-free table and a few atomic adds; nothing locks or allocates.
//!
//! A module is flagged for an **underflow** when the ledger has counted more
//! puts than the module had references (elastio-snap #163: after a driver
//! swapped a block device's `fops`, a close put the wrong module).  This is
//! decided from the ledger's own counts, never from the refcount: `rmmod`
//! takes the refcount below zero for a moment (`try_release_module_ref`
//! subtracts the loader's base reference first), and `module_put` fires its
//! tracepoint after the decrement, when the module may already be unloaded
//! and freed.  So the flag is raised only where the counts are exact: for a
//! module seen from its `MODULE_STATE_COMING` notification, whose refcount
//! was read there as the baseline, and counted ever since.  For a module
//! first seen later (loaded before refledger, or after a `reset`), the
//! baseline is an estimate and `balance` is shown but never flags.
//!
//! Where the module may be dereferenced:
//!
//! - `module_get`'s handler: the get succeeded, so the caller holds the
//!   module for the duration of the call.  Names and estimates are learned
//!   there.
//! - the module notifier: the module is alive for the call.
//! - `module_put`'s handler: never.  The module pointer is only a key.
//! - debugfs reads: only a module whose slot is `LIFE_LIVE`, inside an RCU
//!   read-side section (see [`refcount`]).
//!
//! A `delete_module(2)` refused because the module is in use is recorded,
//! so `leaks` can show who holds it.

use crate::wrappers::{
    bindings,
    clock::now_ns,
    debugfs::{seq_print, SeqFile},
    evidence::{Evidence, Name, Secs},
    kprobe::{return_handler, ProbeData, Regs},
    probes::{Candidate, Spec},
    tracepoint::TracepointProbe,
};
use core::{
    cell::UnsafeCell,
    ffi::c_void,
    sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{c_str, ffi, prelude::*};

/// Modules the ledger can hold.
pub(crate) const MAX_MODULES: usize = 256;
/// Distinct (module, call site) pairs it can count.
pub(crate) const MAX_SITES: usize = 2048;
// A site's index fits in the low 16 bits of a `ModSlot::last_site` entry.
const _: () = assert!(MAX_SITES <= 1 << 16);
/// Names `modules=` can list.
pub(crate) const MAX_FILTER: usize = 8;
/// The kernel's `MODULE_NAME_LEN`.
const NAME_LEN: usize = 56;

/// States of a once-written cell (`name`, `flag`, `baseline`).
const CELL_NONE: u32 = 0;
const CELL_WRITING: u32 = 1;
const CELL_SET: u32 = 2;
/// `baseline` only: read at the module's COMING notification and counted
/// ever since, so `balance` is the module's real reference count.
const CELL_EXACT: u32 = 3;

/// A module not seen alive yet (only in puts, or its name is all we know).
const LIFE_UNKNOWN: u32 = 0;
/// Loaded: its refcount may be read, inside an RCU read-side section.
const LIFE_LIVE: u32 = 1;
/// Its GOING notification was seen: unloaded, or about to be.
const LIFE_GONE: u32 = 2;

/// One module.
///
/// # Invariants
///
/// - `name` is written only by the CPU that moved `named` from `CELL_NONE`
///   to `CELL_WRITING`, and read only after `CELL_SET` was observed with
///   acquire ordering, inside an RCU read-side section (so that [`reset`],
///   which clears `named` and then waits for a grace period before a slot
///   can be claimed and written again, never overlaps a read).  The same
///   holds for `flag` with `flagged`.
/// - `life` goes from `LIFE_UNKNOWN` to `LIFE_LIVE` (the COMING
///   notification, or `module_get`'s handler under the protocol of
///   [`learn`]) to `LIFE_GONE` (the GOING notification, or retirement), and
///   back to `LIFE_UNKNOWN` only in [`reset`].  `LIFE_LIVE` is stored only
///   before our GOING notification for the module at `key` stores
///   `LIFE_GONE` (in the modification order of `life`), or when there is
///   none yet to come for it.
struct ModSlot {
    key: AtomicUsize,
    named: AtomicU32,
    name: UnsafeCell<Name<NAME_LEN>>,
    based: AtomicU32,
    baseline: AtomicI64,
    gets: AtomicI64,
    puts: AtomicI64,
    tracked: AtomicBool,
    life: AtomicU32,
    flagged: AtomicU32,
    flag: UnsafeCell<(Evidence, i64)>,
    refused: AtomicU32,
    refused_at: AtomicU64,
    /// The call sites of this module's last get (`[0]`) and last put
    /// (`[1]`), as [`site_cache`] encodes them, or 0: a module's gets and
    /// puts mostly come from one site each time, which is then found
    /// without hashing.
    last_site: [AtomicU64; 2],
}

/// Claims a cell that nobody has written (`CELL_NONE` to `CELL_WRITING`):
/// on success the caller alone writes it, then publishes it.
fn claim_cell(state: &AtomicU32) -> bool {
    state
        .compare_exchange(
            CELL_NONE,
            CELL_WRITING,
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// A copy of `cell`, if `state` says it was published (`CELL_SET`).
///
/// # Safety
///
/// `state` must guard `cell` as the type invariants of [`ModSlot`] say: the
/// cell is written only while `state` is `CELL_WRITING`, and not written
/// again until a grace period after `state` left `CELL_SET`.
unsafe fn read_cell<T: Copy>(state: &AtomicU32, cell: &UnsafeCell<T>) -> Option<T> {
    // SAFETY: `rl_rcu_read_lock` has no precondition; unlocked below.
    unsafe { bindings::rl_rcu_read_lock() };
    let v = (state.load(Ordering::Acquire) == CELL_SET).then(|| {
        // SAFETY: Written before `CELL_SET` was released, and not written
        // again before a grace period after `state` is cleared; this is a
        // read-side section (the safety contract).
        unsafe { *cell.get() }
    });
    // SAFETY: Locked above.
    unsafe { bindings::rl_rcu_read_unlock() };
    v
}

impl ModSlot {
    // Only used to initialize the static array, one fresh copy per element.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self = Self {
        key: AtomicUsize::new(0),
        named: AtomicU32::new(CELL_NONE),
        name: UnsafeCell::new(Name::EMPTY),
        based: AtomicU32::new(CELL_NONE),
        baseline: AtomicI64::new(0),
        gets: AtomicI64::new(0),
        puts: AtomicI64::new(0),
        // Until a claimant learns the name: counting an event too many for
        // a module outside the filter is better than missing one.
        tracked: AtomicBool::new(true),
        life: AtomicU32::new(LIFE_UNKNOWN),
        flagged: AtomicU32::new(CELL_NONE),
        flag: UnsafeCell::new((Evidence::EMPTY, 0)),
        refused: AtomicU32::new(0),
        refused_at: AtomicU64::new(0),
        last_site: [const { AtomicU64::new(0) }; 2],
    };

    /// The module's name, once it is known.
    fn name(&self) -> Option<Name<NAME_LEN>> {
        // SAFETY: `named` guards `name` (type invariants).
        unsafe { read_cell(&self.named, &self.name) }
    }

    /// The underflow record, once flagged.
    fn flag(&self) -> Option<(Evidence, i64)> {
        // SAFETY: `flagged` guards `flag` (type invariants).
        unsafe { read_cell(&self.flagged, &self.flag) }
    }

    /// The baseline and whether it is exact, once there is one.
    fn baseline(&self) -> Option<(i64, bool)> {
        match self.based.load(Ordering::Acquire) {
            CELL_SET => Some((self.baseline.load(Ordering::Relaxed), false)),
            CELL_EXACT => Some((self.baseline.load(Ordering::Relaxed), true)),
            _ => None,
        }
    }

    /// Sets the name, if nobody has, and whether the filter tracks it.
    fn set_name(&self, name: Name<NAME_LEN>) {
        if claim_cell(&self.named) {
            // SAFETY: We won `named`, so we alone write `name`; readers wait
            // for `CELL_SET` (type invariants).
            unsafe { *self.name.get() = name };
            self.named.store(CELL_SET, Ordering::Release);
            self.tracked
                .store(wanted(name_bytes(&name)), Ordering::Release);
        }
    }

    /// Marks the counts inexact (counting stopped for a while).
    fn lose_exactness(&self) {
        let _ =
            self.based
                .compare_exchange(CELL_EXACT, CELL_SET, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// A (module, call site) pair: `key` is the module's slot + 1 in the top 16
/// bits and the low 48 bits of the call site (kernel addresses have all top
/// 16 bits set, so nothing is lost).
struct SiteSlot {
    key: AtomicU64,
    gets: AtomicU64,
    puts: AtomicU64,
}

impl SiteSlot {
    // Only used to initialize the static array, one fresh copy per element.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self = Self {
        key: AtomicU64::new(0),
        gets: AtomicU64::new(0),
        puts: AtomicU64::new(0),
    };
}

// SAFETY: The cells are accessed per the `ModSlot` invariants; everything
// else is atomic.
unsafe impl Sync for ModSlot {}

static MODS: [ModSlot; MAX_MODULES] = [const { ModSlot::EMPTY }; MAX_MODULES];
static SITES: [SiteSlot; MAX_SITES] = [const { SiteSlot::EMPTY }; MAX_SITES];
static DROPPED_MODULES: AtomicU64 = AtomicU64::new(0);
static DROPPED_SITES: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Both tracepoints are armed: only then are a module's counts complete, so
/// only then can its baseline be exact.
static COMPLETE: AtomicBool = AtomicBool::new(false);
/// Set while [`reset`] clears the tables: handlers and the notifier leave
/// them alone.
static RESETTING: AtomicBool = AtomicBool::new(false);
/// `modules=all`, or hashes of up to `MAX_FILTER` names (0 = unused).
static FILTER_ALL: AtomicBool = AtomicBool::new(true);
static FILTER: [AtomicU64; MAX_FILTER] = [const { AtomicU64::new(0) }; MAX_FILTER];

const ADDR_MASK: u64 = (1 << 48) - 1;
/// The key of a slot whose module was freed and whose address was reused:
/// not a valid module address, and not 0, so lookups probe past it.
const RETIRED: usize = 1;

fn name_hash(name: &[u8]) -> u64 {
    // FNV-1a; never 0 for a non-empty name in practice, and 0 marks unused.
    name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

fn wanted(name: &[u8]) -> bool {
    if FILTER_ALL.load(Ordering::Relaxed) {
        return true;
    }
    let h = name_hash(name);
    FILTER.iter().any(|f| f.load(Ordering::Relaxed) == h)
}

fn hash(p: usize) -> usize {
    ((p as u64 >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % MAX_MODULES
}

/// Reads a module's name.
///
/// # Safety
///
/// `m` must be a module that cannot be freed during the call.
unsafe fn module_name(m: *mut bindings::module) -> Name<NAME_LEN> {
    // SAFETY: Per the safety contract; `name` is a NUL-terminated array.
    unsafe { Name::from_c((*m).name.as_ptr()) }
}

/// The slot keyed by module address `key`, claimed if there is none, and
/// whether this call claimed it.  Never dereferences `key`.
fn slot_for(key: usize) -> Option<(usize, bool)> {
    let mut i = hash(key);
    for _ in 0..MAX_MODULES {
        let s = &MODS[i];
        match s.key.load(Ordering::Acquire) {
            k if k == key => return Some((i, false)),
            0 => {
                if s.key
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Some((i, true));
                }
                if s.key.load(Ordering::Acquire) == key {
                    return Some((i, false));
                }
            }
            _ => {}
        }
        i = (i + 1) % MAX_MODULES;
    }
    DROPPED_MODULES.fetch_add(1, Ordering::Relaxed);
    None
}

fn name_bytes<const N: usize>(n: &Name<N>) -> &[u8] {
    match n.as_str() {
        "-" => b"",
        s => s.as_bytes(),
    }
}

/// A cache entry for [`ModSlot::last_site`]: the low 48 bits of the call
/// site `ip` (all a key keeps) above site index `i`.  No call site (kernel
/// or module text) has its low 48 bits zero, so 0 matches none.
fn site_cache(ip: usize, i: usize) -> u64 {
    ((ip as u64) << 16) | i as u64
}

/// Counts a get (`get`) or put at call site `ip` of the module in slot
/// `slot`: at the site this module's last get or put came from, if it is
/// `ip`, else at the site found or made by [`site_for`].  A site, once made,
/// keeps its key until [`reset`], which clears the caches too, so an index
/// cached for `ip` stays right.
fn count_site(slot: usize, ip: usize, get: bool) {
    let cache = &MODS[slot % MAX_MODULES].last_site[usize::from(!get)];
    let c = cache.load(Ordering::Relaxed);
    let i = if (c ^ site_cache(ip, 0)) >> 16 == 0 {
        (c & 0xffff) as usize
    } else {
        let Some(i) = site_for(slot, ip) else {
            DROPPED_SITES.fetch_add(1, Ordering::Relaxed);
            return;
        };
        cache.store(site_cache(ip, i), Ordering::Relaxed);
        i
    };
    let s = &SITES[i % MAX_SITES];
    if get {
        s.gets.fetch_add(1, Ordering::Relaxed);
    } else {
        s.puts.fetch_add(1, Ordering::Relaxed);
    }
}

/// The index of the site of call site `ip` of the module in slot `slot`,
/// claimed if there is none, or `None` if the table is full.
fn site_for(slot: usize, ip: usize) -> Option<usize> {
    let key = ((slot as u64 + 1) << 48) | (ip as u64 & ADDR_MASK);
    let mut i = ((key.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 53) as usize % MAX_SITES;
    for _ in 0..MAX_SITES {
        let s = &SITES[i];
        let k = s.key.load(Ordering::Relaxed);
        if k == 0 {
            let _ = s
                .key
                .compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed);
        }
        if s.key.load(Ordering::Relaxed) == key {
            return Some(i);
        }
        i = (i + 1) % MAX_SITES;
    }
    None
}

fn counting() -> bool {
    ENABLED.load(Ordering::Relaxed) && !RESETTING.load(Ordering::Acquire)
}

/// Learns what a held module tells: its name, an estimated baseline if
/// there is none, and that it is live.
///
/// Liveness protocol: `LIFE_LIVE` may only be stored before our GOING
/// notification for the module stores `LIFE_GONE`, else a debugfs read
/// could dereference the module after it is freed.  Only a module in state
/// LIVE is considered: it leaves that state only through `delete_module`,
/// which sets GOING (`try_stop_module`) before it calls the GOING notifiers
/// and frees the module.  The slot's key is stored (claimed) before this
/// runs; this issues a full barrier, reads the state, and if it is LIVE
/// moves `life` from `LIFE_UNKNOWN` to `LIFE_LIVE`.  The notifier, after the
/// kernel's store of GOING, issues a full barrier and then looks for the
/// slot by key and stores `LIFE_GONE`.  In this store-buffering pattern one
/// of the two reads sees the other's write: either we see GOING and leave
/// `life` alone, or the notifier finds the slot, and then either its
/// `LIFE_GONE` came first and our compare-and-swap fails, or ours came first
/// and `LIFE_LIVE` precedes `LIFE_GONE`.  A module still COMING is left
/// alone: it may fail to load without a GOING notification of ours (when its
/// COMING one was never sent), and its COMING notification sets `LIFE_LIVE`
/// itself.  The GOING notification does this even during a [`reset`].
///
/// # Safety
///
/// `m` must be held for the duration of the call, and be `MODS[i]`'s key.
unsafe fn learn(i: usize, m: *mut bindings::module) {
    let s = &MODS[i];
    if s.named.load(Ordering::Relaxed) == CELL_NONE {
        // SAFETY: `m` is held.
        s.set_name(unsafe { module_name(m) });
    }
    if s.based.load(Ordering::Relaxed) == CELL_NONE && claim_cell(&s.based) {
        // SAFETY: `m` is held.
        let rc = i64::from(unsafe { bindings::module_refcount(m) });
        let counted = s.gets.load(Ordering::Relaxed) - s.puts.load(Ordering::Relaxed);
        s.baseline.store(rc - counted, Ordering::Relaxed);
        s.based.store(CELL_SET, Ordering::Release);
    }
    if s.life.load(Ordering::Relaxed) != LIFE_UNKNOWN {
        return;
    }
    fence(Ordering::SeqCst);
    // SAFETY: `m` is held; `state` is written concurrently by the module
    // loader, so it is read once, volatile.
    let state = unsafe { core::ptr::read_volatile(&raw const (*m).state) };
    if state == bindings::module_state_MODULE_STATE_LIVE {
        let _ =
            s.life
                .compare_exchange(LIFE_UNKNOWN, LIFE_LIVE, Ordering::SeqCst, Ordering::Relaxed);
    }
}

/// # Safety
///
/// Called by the `module:module_get` tracepoint.
unsafe extern "C" fn on_module_get(_data: *mut c_void, m: *mut bindings::module, ip: ffi::c_ulong) {
    if !counting() || m.is_null() {
        return;
    }
    let Some((i, _)) = slot_for(m as usize) else {
        return;
    };
    let s = &MODS[i];
    if s.tracked.load(Ordering::Acquire) {
        // Release: a put of this reference, which happens after this, sees
        // this get counted (see `on_module_put`).
        s.gets.fetch_add(1, Ordering::Release);
        count_site(i, ip, true);
    }
    // SAFETY: The tracepoint fires after the get succeeded, before
    // `try_module_get`/`__module_get` returns to the caller, who holds the
    // module until it puts it, after this call.  `i` was found by `m`.
    unsafe { learn(i, m) };
}

/// # Safety
///
/// Called by the `module:module_put` tracepoint.
unsafe extern "C" fn on_module_put(_data: *mut c_void, m: *mut bindings::module, ip: ffi::c_ulong) {
    // `module_put` has dropped the caller's reference before this fires,
    // with preemption enabled in between: the module may be unloaded and
    // freed by now, so `m` is only a key here, never dereferenced.
    if !counting() || m.is_null() {
        return;
    }
    let Some((i, _)) = slot_for(m as usize) else {
        return;
    };
    let s = &MODS[i];
    if !s.tracked.load(Ordering::Acquire) {
        return;
    }
    // AcqRel: every put counted before this one synchronizes with us, and
    // the get each of them (and we) drop was counted before that put, so
    // `gets` below includes the gets of every counted put.  Gets not yet
    // counted can only make the balance look higher, never lower.
    let puts = s.puts.fetch_add(1, Ordering::AcqRel) + 1;
    count_site(i, ip, false);
    let Some((baseline, true)) = s.baseline() else {
        return;
    };
    let balance = baseline + s.gets.load(Ordering::Relaxed) - puts;
    if balance < 0 && claim_cell(&s.flagged) {
        // SAFETY: We won `flagged`, so we alone write `flag`; readers wait
        // for `CELL_SET` (type invariants).
        unsafe { *s.flag.get() = (Evidence::capture(ip), balance) };
        s.flagged.store(CELL_SET, Ordering::Release);
    }
}

/// The role the module tracepoints have in the `probes` file.
pub(crate) const TRACEPOINT_ROLE: &str = "module_refcount";

/// Registers on `module:module_get` and `module:module_put`, for the probe
/// set to own; counting starts with [`start_counting`].
pub(crate) fn tracepoints() -> [TracepointProbe; 2] {
    // SAFETY: Both functions match `TP_PROTO(struct module *mod, unsigned
    // long ip)` with the leading data pointer, and are part of this module,
    // which outlives the probes (the probe set unregisters them).
    unsafe {
        [
            TracepointProbe::new(c_str!("module_get"), on_module_get as *mut c_void),
            TracepointProbe::new(c_str!("module_put"), on_module_put as *mut c_void),
        ]
    }
}

/// Starts counting gets and puts; `complete` when both tracepoints are
/// armed, so that baselines taken from now on are exact.
pub(crate) fn start_counting(complete: bool) {
    COMPLETE.store(complete, Ordering::Release);
    ENABLED.store(true, Ordering::Release);
}

/// Stops counting, before the tracepoints are unregistered.
pub(crate) fn stop_counting() {
    ENABLED.store(false, Ordering::Release);
    COMPLETE.store(false, Ordering::Release);
}

/// Called from the module notifier, in process context: module `m` is
/// coming (its address may be one a freed module had) or going.  `m` is
/// alive for the call.
pub(crate) fn on_module_state(m: *mut bindings::module, coming: bool) {
    // A read-side section, so that `reset` can wait for this to finish.
    // SAFETY: `rl_rcu_read_lock` has no precondition; unlocked below.
    unsafe { bindings::rl_rcu_read_lock() };
    // While `reset` clears the tables, a coming module is not recorded (it
    // will be, from its first get, with an estimated baseline), but a going
    // one is always marked gone: a debugfs read must not see it live.
    let resetting = RESETTING.load(Ordering::Acquire);
    if !coming {
        module_going(m, !resetting);
    } else if !resetting {
        module_coming(m);
    }
    // SAFETY: Locked above.
    unsafe { bindings::rl_rcu_read_unlock() };
}

fn module_coming(m: *mut bindings::module) {
    let key = m as usize;
    // A slot with this key is a freed module's, whose address the new one
    // has (or, rarely, the new module's own, made by a get or put in the
    // moment between its formation and this notification): retire it,
    // kept for display and skipped by lookups, so the new module starts a
    // slot of its own.
    for s in MODS.iter() {
        if s.key.load(Ordering::Acquire) == key {
            s.life.store(LIFE_GONE, Ordering::SeqCst);
            s.key.store(RETIRED, Ordering::Release);
        }
    }
    let Some((i, fresh)) = slot_for(key) else {
        return;
    };
    let s = &MODS[i];
    // SAFETY: `m` is alive for the notification.
    s.set_name(unsafe { module_name(m) });
    if fresh && claim_cell(&s.based) {
        // The slot is ours and counts from its claim on.  The refcount now
        // is the loader's initial reference (`module_unload_init`), plus
        // any reference taken since the module became COMING, a moment
        // ago: a get already in it and counted again only makes the balance
        // higher.  The one way to make it lower, and the flag wrong, is a
        // reference taken and dropped in that moment whose put's tracepoint
        // fires after our claim but whose decrement came before this read:
        // a module that has not run its init yet is known to hardly anyone,
        // but a kprobe registered on its text in that moment gets and puts
        // it (`check_kprobe_address_safe`).  Not excluded, only unlikely.
        // Exact only if every get and put after the read below is counted:
        // both tracepoints armed before it (the notifier can run before
        // they are), and the module tracked.
        let exact = ENABLED.load(Ordering::Acquire)
            && COMPLETE.load(Ordering::Acquire)
            && s.tracked.load(Ordering::Acquire);
        // SAFETY: `m` is alive for the notification.
        let rc = i64::from(unsafe { bindings::module_refcount(m) });
        s.baseline.store(rc, Ordering::Relaxed);
        s.based
            .store(if exact { CELL_EXACT } else { CELL_SET }, Ordering::Release);
        // A filter that excluded the module meanwhile could not take the
        // exactness away from a cell being written: with `set_filter`'s
        // fence, either it sees `EXACT` now or this sees `tracked` false.
        fence(Ordering::SeqCst);
        if exact && !s.tracked.load(Ordering::Relaxed) {
            s.lose_exactness();
        }
    }
    // No GOING notification can run before this one returns: it follows
    // COMING on the loader's own failure paths, or a `delete_module`, which
    // needs the module LIVE (so no protocol is needed here, see `learn`).
    s.life.store(LIFE_LIVE, Ordering::SeqCst);
}

/// Marks module `m`'s slot gone, and learns its name if `name`.
fn module_going(m: *mut bindings::module, name: bool) {
    let key = m as usize;
    // Pairs with the fence in `learn`: the kernel stored GOING in the
    // module's state before calling the notifiers.
    fence(Ordering::SeqCst);
    for s in MODS.iter() {
        if s.key.load(Ordering::Acquire) != key {
            continue;
        }
        if name {
            // SAFETY: `m` is alive for the notification.
            s.set_name(unsafe { module_name(m) });
        }
        s.life.store(LIFE_GONE, Ordering::SeqCst);
    }
}

/// Sets the filter from `modules=`: `None` tracks every module.  Modules
/// already seen start or stop counting at once; a module that stops
/// counting loses its exact baseline for good, so it is never flagged.
pub(crate) fn set_filter(names: Option<&[&[u8]]>) {
    match names {
        None => FILTER_ALL.store(true, Ordering::Relaxed),
        Some(names) => {
            for (i, f) in FILTER.iter().enumerate() {
                f.store(names.get(i).map_or(0, |n| name_hash(n)), Ordering::Relaxed);
            }
            FILTER_ALL.store(false, Ordering::Relaxed);
        }
    }
    for s in MODS.iter() {
        if let Some(n) = s.name() {
            let want = wanted(name_bytes(&n));
            if !want {
                // Before `tracked`: a handler that skips a count because it
                // saw `tracked` false (acquire) then sees this too.
                s.lose_exactness();
            }
            s.tracked.store(want, Ordering::Release);
            if !want {
                // Again after it, for a baseline being written meanwhile
                // (`module_coming`'s fence pairs with this one).
                fence(Ordering::SeqCst);
                s.lose_exactness();
            }
        }
    }
}

/// Forgets every module record, count and flag.  Process context only: it
/// waits for two RCU grace periods.
pub(crate) fn reset() {
    RESETTING.store(true, Ordering::SeqCst);
    // The handlers run with preemption disabled (tracepoint and kprobe
    // handlers) and the notifier's work is in a read-side section, so after
    // a grace period none is writing into the tables.
    // SAFETY: `synchronize_rcu` may sleep; we are in process context.
    unsafe { bindings::synchronize_rcu() };
    for s in MODS.iter() {
        s.life.store(LIFE_UNKNOWN, Ordering::SeqCst);
        s.named.store(CELL_NONE, Ordering::Release);
        s.flagged.store(CELL_NONE, Ordering::Release);
        s.based.store(CELL_NONE, Ordering::Release);
    }
    // Readers that saw a name or flag set copy it in a read-side section:
    // after this grace period none is copying, so the cells can be written
    // again once the slots are claimed anew.  Likewise a reader that saw a
    // slot live is done with its module.
    // SAFETY: As above.
    unsafe { bindings::synchronize_rcu() };
    for s in MODS.iter() {
        s.gets.store(0, Ordering::Relaxed);
        s.puts.store(0, Ordering::Relaxed);
        s.baseline.store(0, Ordering::Relaxed);
        s.tracked.store(true, Ordering::Relaxed);
        s.refused.store(0, Ordering::Relaxed);
        s.refused_at.store(0, Ordering::Relaxed);
        for c in &s.last_site {
            c.store(0, Ordering::Relaxed);
        }
        s.key.store(0, Ordering::Release);
    }
    for s in SITES.iter() {
        s.gets.store(0, Ordering::Relaxed);
        s.puts.store(0, Ordering::Relaxed);
        s.key.store(0, Ordering::Release);
    }
    DROPPED_MODULES.store(0, Ordering::Relaxed);
    DROPPED_SITES.store(0, Ordering::Relaxed);
    // A reader that sees a slot claimed and made live again after this
    // began its read-side section after this grace period began, so it
    // reads the new key, not one from before the reset.
    // SAFETY: As above.
    unsafe { bindings::synchronize_rcu() };
    // A module unloaded during the reset was marked gone in its old slot
    // after the first loop, and a module that claims that slot afterwards
    // would never be learned live (`learn` only moves `LIFE_UNKNOWN`).  No
    // slot is claimed now (every key is 0, and nothing claims one while
    // resetting), and every notification that could have read an old key
    // has returned: each slot starts unknown again, as a new claim expects.
    for s in MODS.iter() {
        s.life.store(LIFE_UNKNOWN, Ordering::SeqCst);
    }
    RESETTING.store(false, Ordering::Release);
}

// delete_module(2), to explain a refused rmmod.

fn delete_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // The syscall wrapper's argument is the user's registers; the name is
    // the first syscall argument.
    let uregs = regs.arg(0) as *const bindings::pt_regs;
    if uregs.is_null() {
        return false;
    }
    // SAFETY: The syscall entry passes its saved user registers.
    data[0] = unsafe { (*uregs).di };
    true
}

fn delete_exit(regs: &Regs, data: &ProbeData) {
    if !counting() {
        return;
    }
    // A module in use is refused with EWOULDBLOCK (EAGAIN) or EBUSY.
    let ret = regs.return_value() as isize;
    if ret != EAGAIN.to_errno() as isize && ret != EBUSY.to_errno() as isize {
        return;
    }
    let mut buf = [0u8; NAME_LEN];
    // SAFETY: Reads at most `NAME_LEN - 1` bytes of user memory without
    // faulting; `buf` has room.
    let n = unsafe {
        bindings::copy_from_user_nofault(
            buf.as_mut_ptr().cast(),
            data[0] as *const c_void,
            NAME_LEN - 1,
        )
    };
    if n != 0 {
        return;
    }
    let len = buf.iter().position(|&c| c == 0).unwrap_or(NAME_LEN - 1);
    let want = &buf[..len];
    for s in MODS.iter() {
        if let Some(name) = s.name() {
            if s.life.load(Ordering::Acquire) != LIFE_GONE && name_bytes(&name) == want {
                s.refused.fetch_add(1, Ordering::Relaxed);
                s.refused_at.store(now_ns(), Ordering::Relaxed);
            }
        }
    }
}

/// The kprobes of this ledger.
pub(crate) static SPECS: [Spec; 1] = [Spec {
    role: "module_unload",
    module: None,
    candidates: &[Candidate {
        symbol: c_str!("__x64_sys_delete_module"),
        handler: return_handler!(delete_entry, delete_exit),
    }],
}];

/// The refcount of the module in slot `s` now, if it is known to be loaded.
fn refcount(s: &ModSlot) -> Option<i64> {
    // SAFETY: Read in a read-side section, so a module whose slot we see
    // `LIFE_LIVE` stays allocated until the unlock.  The kernel frees a
    // module only after its GOING notification (`delete_module`, and the
    // loader's failure paths, call the GOING notifiers before
    // `free_module`), which stores `LIFE_GONE` in its slot (even during a
    // `reset`, which itself clears `life` before it frees slots), and after a
    // grace period (`free_module` calls `synchronize_rcu()` between taking
    // the module off its lists and freeing its memory).  `LIFE_LIVE` is
    // stored only before that `LIFE_GONE` (type invariants), so if we read
    // it, our read did not see that store, so our read-side section began
    // before that grace period did, and the free waits for our unlock.  The
    // key we read first, in the same section, is the module `life` speaks
    // for: a slot is retired (`LIFE_GONE`) before its key changes, and
    // `reset` clears `life` a grace period before it clears the keys, and
    // lets slots be claimed again only a grace period after that.
    unsafe {
        bindings::rl_rcu_read_lock();
        let key = s.key.load(Ordering::Acquire);
        let rc = (key > RETIRED && s.life.load(Ordering::SeqCst) == LIFE_LIVE)
            .then(|| i64::from(bindings::module_refcount(key as *mut _)));
        bindings::rl_rcu_read_unlock();
        rc
    }
}

/// `loaded`, `unloaded` or `unknown` (a module seen only in puts, whose
/// liveness the ledger cannot tell).
fn state(s: &ModSlot, rc: Option<i64>) -> &'static str {
    if rc.is_some() {
        "loaded"
    } else if s.life.load(Ordering::Acquire) == LIFE_GONE {
        "unloaded"
    } else {
        "unknown"
    }
}

fn show_sites(m: &SeqFile, slot: usize, indent: &str) {
    for s in SITES.iter() {
        let key = s.key.load(Ordering::Relaxed);
        if key >> 48 != slot as u64 + 1 {
            continue;
        }
        let ip = (key & ADDR_MASK) | !ADDR_MASK;
        seq_print!(
            m,
            "{}site gets={} puts={} caller=",
            indent,
            s.gets.load(Ordering::Relaxed),
            s.puts.load(Ordering::Relaxed)
        );
        m.symbol(ip as usize);
        seq_print!(m, "\n");
    }
}

fn show_module(m: &SeqFile, i: usize, name: &Name<NAME_LEN>) {
    let s = &MODS[i];
    let rc = refcount(s);
    seq_print!(m, "module={} state={} ", name.as_str(), state(s, rc));
    show_counts(m, s, rc);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    seq_print!(
        m,
        " tracked={} underflow={} rmmod_refused={}\n",
        yes_no(s.tracked.load(Ordering::Relaxed)),
        yes_no(s.flagged.load(Ordering::Acquire) == CELL_SET),
        s.refused.load(Ordering::Relaxed)
    );
}

/// The `modules` file: one line per module, its call sites and, for a
/// loaded module with references, what `holders` (given the module's name)
/// finds holding it.
pub(crate) fn show(m: &SeqFile, holders: impl Fn(&SeqFile, &[u8])) -> Result {
    let used = MODS
        .iter()
        .filter(|s| s.key.load(Ordering::Relaxed) != 0)
        .count();
    let sites = SITES
        .iter()
        .filter(|s| s.key.load(Ordering::Relaxed) != 0)
        .count();
    seq_print!(
        m,
        "# modules={} capacity={} dropped={} sites={} site_capacity={} sites_dropped={}\n",
        used,
        MAX_MODULES,
        DROPPED_MODULES.load(Ordering::Relaxed),
        sites,
        MAX_SITES,
        DROPPED_SITES.load(Ordering::Relaxed)
    );
    for (i, s) in MODS.iter().enumerate() {
        if s.key.load(Ordering::Acquire) == 0 {
            continue;
        }
        // A module seen only in puts has no name yet (`-`): a put's
        // module is never read.
        let name = s.name().unwrap_or(Name::EMPTY);
        show_module(m, i, &name);
        if s.tracked.load(Ordering::Relaxed) {
            show_sites(m, i, "  ");
        }
        // What holds a loaded module: `rmmod` refuses in userspace when
        // the refcount is not zero, so the kernel never sees the attempt;
        // this is where the answer to "in use by whom" is.
        if refcount(s).is_some_and(|rc| rc > 0) {
            holders(m, name_bytes(&name));
        }
    }
    Ok(())
}

/// The module part of the `leaks` file: underflows with the offending put,
/// and refused unloads with the gets and puts that explain them.
pub(crate) fn show_leaks(m: &SeqFile, holders: impl Fn(&SeqFile, &[u8])) {
    for (i, s) in MODS.iter().enumerate() {
        let Some(name) = s.name() else { continue };
        if let Some((ev, balance)) = s.flag() {
            seq_print!(
                m,
                "module_underflow module={} balance_at_put={} flagged={} ",
                name.as_str(),
                balance,
                Secs(ev.time)
            );
            show_module_tail(m, i);
            seq_print!(m, "  put t={} ", Secs(ev.time));
            ev.show_who(m);
            seq_print!(m, "\n");
            ev.show_stack(m, "    ");
            show_sites(m, i, "  ");
        }
        let refused = s.refused.load(Ordering::Relaxed);
        if refused > 0 && refcount(s).is_some() {
            seq_print!(
                m,
                "module_busy module={} rmmod_refused={} last={} ",
                name.as_str(),
                refused,
                Secs(s.refused_at.load(Ordering::Relaxed))
            );
            show_module_tail(m, i);
            show_sites(m, i, "  ");
            holders(m, name_bytes(&name));
        }
    }
}

fn show_module_tail(m: &SeqFile, i: usize) {
    let s = &MODS[i];
    show_counts(m, s, refcount(s));
    seq_print!(m, "\n");
}

/// Prints `refcount=.. gets=.. puts=.. baseline=.. balance=.. exact=..`:
/// `-` for a refcount not known to be readable, `?` for a baseline not
/// known yet, and whether the baseline is exact (the module was counted
/// from its load on, so `balance` is its reference count).
fn show_counts(m: &SeqFile, s: &ModSlot, rc: Option<i64>) {
    match rc {
        Some(rc) => seq_print!(m, "refcount={}", rc),
        None => seq_print!(m, "refcount=-"),
    }
    let gets = s.gets.load(Ordering::Relaxed);
    let puts = s.puts.load(Ordering::Relaxed);
    seq_print!(m, " gets={} puts={}", gets, puts);
    match s.baseline() {
        Some((b, exact)) => seq_print!(
            m,
            " baseline={} balance={} exact={}",
            b,
            b + gets - puts,
            if exact { "yes" } else { "no" }
        ),
        None => seq_print!(m, " baseline=? balance=? exact=no"),
    }
}
