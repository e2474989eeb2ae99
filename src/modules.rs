// SPDX-License-Identifier: GPL-2.0

//! The module ledger: refcount gets and puts by module and call site, from
//! the `module:module_get` and `module:module_put` tracepoints.
//!
//! These tracepoints fire on every `try_module_get`/`module_put` in the
//! system, in any context including interrupts, so the handler is a lookup in
//! a lock-free table and a few atomic adds; nothing locks or allocates.
//!
//! A module is flagged for an **underflow** when a put leaves its refcount
//! below zero (elastio-snap #163: after a driver swapped a block device's
//! `fops`, a close put the wrong module, whose refcount reached -1).  The
//! flag keeps the offending put's call site and stack.  The ledger's own
//! balance (its refcount when first seen, plus gets, less puts) is shown
//! beside the refcount but does not raise the flag: a get or put racing with
//! the first sight of a module can leave the baseline off by one, and where
//! the counts are exact the balance is the refcount anyway.
//! A `delete_module(2)` refused because the module is in use is recorded,
//! so `leaks` can show who holds it.

use crate::{
    bindings,
    compat::CStrDisplay,
    debugfs::{seq_print, SeqFile},
    evidence::{now_ns, Evidence, Name, Secs},
    kprobe::{Handler, ProbeData, Regs},
    probes::{Candidate, Spec},
    tracepoint::TracepointProbe,
};
use core::{
    cell::UnsafeCell,
    ffi::c_void,
    sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{c_str, ffi, prelude::*};

/// Modules the ledger can hold.
pub(crate) const MAX_MODULES: usize = 256;
/// Distinct (module, call site) pairs it can count.
pub(crate) const MAX_SITES: usize = 2048;
/// Names `modules=` can list.
pub(crate) const MAX_FILTER: usize = 8;
/// The kernel's `MODULE_NAME_LEN`.
const NAME_LEN: usize = 56;

const FLAG_NONE: u32 = 0;
const FLAG_WRITING: u32 = 1;
const FLAG_SET: u32 = 2;

/// One module.
///
/// # Invariants
///
/// `name`, `baseline` and `flag` are written only by the CPU that won the
/// matching compare-and-swap (`key` from 0, `flagged` from `FLAG_NONE`), and
/// read only after `ready` (respectively `flagged == FLAG_SET`) was observed
/// with acquire ordering.
struct ModSlot {
    key: AtomicUsize,
    ready: AtomicBool,
    name: UnsafeCell<Name<NAME_LEN>>,
    baseline: AtomicI64,
    gets: AtomicI64,
    puts: AtomicI64,
    tracked: AtomicBool,
    gone: AtomicBool,
    flagged: AtomicU32,
    flag: UnsafeCell<(Evidence, i64)>,
    refused: AtomicU32,
    refused_at: AtomicU64,
}

impl ModSlot {
    // Only used to initialize the static array, one fresh copy per element.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self = Self {
        key: AtomicUsize::new(0),
        ready: AtomicBool::new(false),
        name: UnsafeCell::new(Name::EMPTY),
        baseline: AtomicI64::new(0),
        gets: AtomicI64::new(0),
        puts: AtomicI64::new(0),
        tracked: AtomicBool::new(false),
        gone: AtomicBool::new(false),
        flagged: AtomicU32::new(FLAG_NONE),
        flag: UnsafeCell::new((Evidence::EMPTY, 0)),
        refused: AtomicU32::new(0),
        refused_at: AtomicU64::new(0),
    };

    /// The module's name, once the slot is filled.
    fn name(&self) -> Option<Name<NAME_LEN>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Written before `ready` was released (type invariants).
        Some(unsafe { *self.name.get() })
    }

    fn balance(&self) -> i64 {
        self.baseline.load(Ordering::Relaxed) + self.gets.load(Ordering::Relaxed)
            - self.puts.load(Ordering::Relaxed)
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
/// `m` must be a live module.
unsafe fn module_name(m: *mut bindings::module) -> Name<NAME_LEN> {
    // SAFETY: Per the safety contract; `name` is a NUL-terminated array.
    unsafe { Name::from_c((*m).name.as_ptr()) }
}

/// The slot of module `m`, made if needed.  `delta` is the refcount change
/// the caller is about to count (already applied to the refcount).
///
/// # Safety
///
/// `m` must be a live module.
unsafe fn slot_for(m: *mut bindings::module, delta: i64) -> Option<usize> {
    let key = m as usize;
    let mut i = hash(key);
    for _ in 0..MAX_MODULES {
        let s = &MODS[i];
        match s.key.load(Ordering::Acquire) {
            k if k == key => return Some(i),
            0 => {
                if s.key
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    // SAFETY: `m` is live; we won the slot, so we alone write
                    // its name and baseline before releasing `ready`.
                    unsafe {
                        let name = module_name(m);
                        *s.name.get() = name;
                        let rc = i64::from(bindings::module_refcount(m));
                        s.baseline.store(rc - delta, Ordering::Relaxed);
                        s.tracked
                            .store(wanted(name_bytes(&name)), Ordering::Relaxed);
                    }
                    s.ready.store(true, Ordering::Release);
                    return Some(i);
                }
                if s.key.load(Ordering::Acquire) == key {
                    return Some(i);
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

fn count_site(slot: usize, ip: usize, get: bool) {
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
            if get {
                s.gets.fetch_add(1, Ordering::Relaxed);
            } else {
                s.puts.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        i = (i + 1) % MAX_SITES;
    }
    DROPPED_SITES.fetch_add(1, Ordering::Relaxed);
}

/// Counts one get (`delta` 1) or put (-1) of `m` from `ip`.
///
/// # Safety
///
/// `m` must be a live module (the tracepoints pass the module whose refcount
/// just changed).
unsafe fn account(m: *mut bindings::module, ip: usize, delta: i64) {
    if !ENABLED.load(Ordering::Relaxed) || m.is_null() {
        return;
    }
    // SAFETY: Per the safety contract.
    let Some(i) = (unsafe { slot_for(m, delta) }) else {
        return;
    };
    let s = &MODS[i];
    if !s.tracked.load(Ordering::Relaxed) {
        return;
    }
    if delta > 0 {
        s.gets.fetch_add(1, Ordering::Relaxed);
    } else {
        s.puts.fetch_add(1, Ordering::Relaxed);
    }
    count_site(i, ip, delta > 0);
    if delta > 0 {
        return;
    }
    // SAFETY: `m` is live.
    let rc = i64::from(unsafe { bindings::module_refcount(m) });
    if rc < 0
        && s.flagged
            .compare_exchange(
                FLAG_NONE,
                FLAG_WRITING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    {
        // SAFETY: We won `flagged`, so we alone write `flag` (type
        // invariants); readers wait for `FLAG_SET`.
        unsafe { *s.flag.get() = (Evidence::capture(ip), rc) };
        s.flagged.store(FLAG_SET, Ordering::Release);
    }
}

/// # Safety
///
/// Called by the `module:module_get` tracepoint.
unsafe extern "C" fn on_module_get(_data: *mut c_void, m: *mut bindings::module, ip: ffi::c_ulong) {
    // SAFETY: The tracepoint passes a module just got, so live.
    unsafe { account(m, ip, 1) };
}

/// # Safety
///
/// Called by the `module:module_put` tracepoint.
unsafe extern "C" fn on_module_put(_data: *mut c_void, m: *mut bindings::module, ip: ffi::c_ulong) {
    // SAFETY: `module_put`'s caller still owns the module it puts.
    unsafe { account(m, ip, -1) };
}

/// The module ledger's tracepoint probes; counting stops when dropped.
pub(crate) struct ModuleProbes {
    probes: [TracepointProbe; 2],
}

impl ModuleProbes {
    /// Registers on `module:module_get` and `module:module_put`.
    pub(crate) fn new() -> Self {
        // SAFETY: Both functions match `TP_PROTO(struct module *mod,
        // unsigned long ip)` with the leading data pointer, and are part of
        // this module, which outlives the returned value.
        let probes = unsafe {
            [
                TracepointProbe::new(c_str!("module_get"), on_module_get as *mut c_void),
                TracepointProbe::new(c_str!("module_put"), on_module_put as *mut c_void),
            ]
        };
        ENABLED.store(true, Ordering::Release);
        Self { probes }
    }

    /// Prints the tracepoints' lines of the `probes` file.
    pub(crate) fn show(&self, m: &SeqFile) {
        for p in &self.probes {
            seq_print!(
                m,
                "symbol=module:{} role=module_refcount type=tracepoint ",
                CStrDisplay(p.name())
            );
            match (p.armed(), p.error()) {
                (true, _) => seq_print!(m, "state=armed"),
                (false, Some(e)) => seq_print!(m, "state=failed error={}", e.to_errno()),
                (false, None) => seq_print!(m, "state=disarmed"),
            }
            seq_print!(m, "\n");
        }
    }
}

impl Drop for ModuleProbes {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Release);
    }
}

/// Called from the module notifier: a module is coming (its address may be
/// one a freed module had) or going.
pub(crate) fn on_module_state(m: *mut bindings::module, coming: bool) {
    let key = m as usize;
    for s in MODS.iter() {
        if s.key.load(Ordering::Acquire) != key {
            continue;
        }
        if coming {
            // A new module at a freed one's address: retire the old slot
            // (kept for display, skipped by lookups) so the new module gets
            // a slot of its own.  Nothing can get a module that is not live
            // yet, so no handler is counting into the old slot.
            s.gone.store(true, Ordering::Release);
            s.key.store(RETIRED, Ordering::Release);
        } else {
            s.gone.store(true, Ordering::Release);
        }
    }
}

/// Sets the filter from `modules=`: `None` tracks every module.  Modules
/// already seen start or stop counting at once.
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
            s.tracked.store(wanted(name_bytes(&n)), Ordering::Relaxed);
        }
    }
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
            if !s.gone.load(Ordering::Acquire) && name_bytes(&name) == want {
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
        handler: Handler::Return {
            entry: delete_entry,
            exit: delete_exit,
        },
    }],
}];

/// The refcount of the module in slot `s` now, if it is still loaded.
fn refcount(s: &ModSlot) -> Option<i64> {
    if s.key.load(Ordering::Acquire) == RETIRED {
        return None;
    }
    // SAFETY: The module is freed only after our GOING notification set
    // `gone` and an RCU grace period passed; inside the read-side section,
    // a module not seen gone is still allocated.
    unsafe {
        bindings::rl_rcu_read_lock();
        let rc = (!s.gone.load(Ordering::Acquire)).then(|| {
            i64::from(bindings::module_refcount(
                s.key.load(Ordering::Relaxed) as *mut _
            ))
        });
        bindings::rl_rcu_read_unlock();
        rc
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
    let loaded = refcount(s).is_some();
    seq_print!(
        m,
        "module={} state={} ",
        name.as_str(),
        if loaded { "loaded" } else { "unloaded" }
    );
    show_counts(m, s);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    seq_print!(
        m,
        " tracked={} underflow={} rmmod_refused={}\n",
        yes_no(s.tracked.load(Ordering::Relaxed)),
        yes_no(s.flagged.load(Ordering::Acquire) == FLAG_SET),
        s.refused.load(Ordering::Relaxed)
    );
}

/// The `modules` file.
pub(crate) struct ModulesFile;

impl crate::debugfs::Show for ModulesFile {
    fn show(&self, m: &SeqFile) -> Result {
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
            let Some(name) = s.name() else { continue };
            show_module(m, i, &name);
            if s.tracked.load(Ordering::Relaxed) {
                show_sites(m, i, "  ");
            }
            // What holds a loaded module: `rmmod` refuses in userspace when
            // the refcount is not zero, so the kernel never sees the attempt;
            // this is where the answer to "in use by whom" is.
            if refcount(s).is_some_and(|rc| rc > 0) {
                crate::bdevs::show_holders_of(m, name_bytes(&name));
            }
        }
        Ok(())
    }
}

/// The module part of the `leaks` file: underflows with the offending put,
/// and refused unloads with the gets and puts that explain them.
pub(crate) fn show_leaks(m: &SeqFile, holders: impl Fn(&SeqFile, &[u8])) {
    for (i, s) in MODS.iter().enumerate() {
        let Some(name) = s.name() else { continue };
        if s.flagged.load(Ordering::Acquire) == FLAG_SET {
            // SAFETY: `flag` was written before `FLAG_SET` was released.
            let (ev, rc) = unsafe { *s.flag.get() };
            seq_print!(
                m,
                "module_underflow module={} refcount_at_put={} flagged={} ",
                name.as_str(),
                rc,
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
    show_counts(m, &MODS[i]);
    seq_print!(m, "\n");
}

/// Prints `refcount=.. gets=.. puts=.. baseline=.. balance=..`.
fn show_counts(m: &SeqFile, s: &ModSlot) {
    match refcount(s) {
        Some(rc) => seq_print!(m, "refcount={}", rc),
        None => seq_print!(m, "refcount=-"),
    }
    seq_print!(
        m,
        " gets={} puts={} baseline={} balance={}",
        s.gets.load(Ordering::Relaxed),
        s.puts.load(Ordering::Relaxed),
        s.baseline.load(Ordering::Relaxed),
        s.balance()
    );
}
