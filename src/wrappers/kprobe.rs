// SPDX-License-Identifier: GPL-2.0

//! Kprobes and kretprobes on kernel functions named by symbol.
//!
//! A [`Probe`] owns the C `struct kretprobe` (whose first member is the
//! `struct kprobe` that a plain kprobe uses), a hit counter and the outcome of
//! its last registration.  It is armed with [`Probe::arm`], disarmed with
//! [`Probe::disarm`], and disarmed on drop, so a probe can never outlive the
//! handler it points to.
//!
//! Handlers run in the probed function's context, often atomic: they must not
//! sleep, take a mutex or allocate with `GFP_KERNEL`.

use crate::wrappers::{
    bindings,
    error::{Unavailable, UnavailableCell},
};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use kernel::{container_of, error::to_result, ffi, prelude::*, str::CString, types::Opaque};

/// Scratch space a kretprobe's entry handler fills for its return handler.
pub(crate) type ProbeData = [usize; 6];

/// A kprobe's pre-handler, as the kprobe core calls it.
pub(crate) type PreHandler =
    unsafe extern "C" fn(*mut bindings::kprobe, *mut bindings::pt_regs) -> ffi::c_int;

/// A kretprobe's entry or return handler, as the kprobe core calls it.
pub(crate) type RetHandler =
    unsafe extern "C" fn(*mut bindings::kretprobe_instance, *mut bindings::pt_regs) -> ffi::c_int;

/// What a probe calls when it fires: C handlers made by [`entry_handler!`]
/// and [`return_handler!`], each a trampoline of its own that calls one Rust
/// function directly.  (A trampoline shared by every probe would find the
/// function in the `Probe` and call it indirectly, through a retpoline on
/// most kernels, on every hit of paths as hot as open(2).)  Nothing else
/// may make one: the trampolines take the `kprobe` they are given for one
/// embedded in a [`Probe`].
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// A kprobe: the function runs before the probed function's first
    /// instruction.
    Entry(PreHandler),
    /// A kretprobe.  `entry` runs when the function is entered and returns
    /// whether `exit` should run when it returns (false drops the instance).
    Return {
        /// Called on entry, with the function's arguments.
        entry: RetHandler,
        /// Called on return, with the return value.
        exit: RetHandler,
    },
}

/// The [`Handler`] of a kprobe that calls `$f`, a `fn(&Regs)`, from a
/// trampoline named after it (`<f>_pre`, as profiles show it).
macro_rules! entry_handler {
    ($f:ident) => {
        ::kernel::macros::paste! {{
            /// # Safety
            ///
            /// Called by the kprobe core with a kprobe registered by
            /// `Probe::arm` and the registers of the probed function.
            unsafe extern "C" fn [<$f _pre>](
                kp: *mut $crate::wrappers::bindings::kprobe,
                regs: *mut $crate::wrappers::bindings::pt_regs,
            ) -> ::kernel::ffi::c_int {
                // SAFETY: Per this function's safety contract.
                unsafe { $crate::wrappers::kprobe::pre_trampoline(kp, regs, $f) }
            }
            $crate::wrappers::kprobe::Handler::Entry([<$f _pre>])
        }}
    };
}
pub(crate) use entry_handler;

/// The [`Handler`] of a kretprobe that calls `$entry`, a
/// `fn(&Regs, &mut ProbeData) -> bool`, on entry and `$exit`, a
/// `fn(&Regs, &ProbeData)`, on return, from trampolines named after them
/// (`<entry>_entry`, `<exit>_ret`).
macro_rules! return_handler {
    ($entry:ident, $exit:ident) => {
        ::kernel::macros::paste! {{
            /// # Safety
            ///
            /// Called by the kprobe core with an instance of a kretprobe
            /// registered by `Probe::arm` and the registers at function entry.
            unsafe extern "C" fn [<$entry _entry>](
                ri: *mut $crate::wrappers::bindings::kretprobe_instance,
                regs: *mut $crate::wrappers::bindings::pt_regs,
            ) -> ::kernel::ffi::c_int {
                // SAFETY: Per this function's safety contract.
                unsafe { $crate::wrappers::kprobe::entry_trampoline(ri, regs, $entry) }
            }
            /// # Safety
            ///
            /// Called by the kprobe core with an instance of a kretprobe
            /// registered by `Probe::arm`, whose entry handler returned 0,
            /// and the registers at function return.
            unsafe extern "C" fn [<$exit _ret>](
                ri: *mut $crate::wrappers::bindings::kretprobe_instance,
                regs: *mut $crate::wrappers::bindings::pt_regs,
            ) -> ::kernel::ffi::c_int {
                // SAFETY: Per this function's safety contract.
                unsafe { $crate::wrappers::kprobe::exit_trampoline(ri, regs, $exit) }
            }
            $crate::wrappers::kprobe::Handler::Return {
                entry: [<$entry _entry>],
                exit: [<$exit _ret>],
            }
        }}
    };
}
pub(crate) use return_handler;

/// The registers of a probed function, as a kprobe handler sees them.
pub(crate) struct Regs(*mut bindings::pt_regs);

impl Regs {
    /// The `n`-th argument (from 0) of the probed function, valid on entry.
    pub(crate) fn arg(&self, n: u32) -> usize {
        // On x86-64 the first six are registers, read here as
        // `regs_get_kernel_argument()` does: a call per argument would cost
        // more than the read on paths as hot as open(2).
        #[cfg(target_arch = "x86_64")]
        if n < 6 {
            // SAFETY: `self.0` is the `pt_regs` the kprobe core passed to the
            // handler that built this `Regs`, valid for the handler's
            // duration.
            let r = unsafe { &*self.0 };
            return [r.di, r.si, r.dx, r.cx, r.r8, r.r9][n as usize];
        }
        // SAFETY: As above.
        unsafe { bindings::rl_regs_get_kernel_argument(self.0, n) as usize }
    }

    /// The address the probed function will return to, valid on entry: the
    /// word on top of the stack at its first instruction.
    pub(crate) fn entry_return_address(&self) -> usize {
        // On x86-64 that word is read directly, where
        // `regs_get_kernel_stack_nth()` reads it with
        // `copy_from_kernel_nofault()`: that costs more than the rest of a
        // short handler, and guards against nothing here, since the word is
        // the top of the stack the probed function is running on.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self.0` is valid as in `arg`.  `sp` is the stack pointer
        // of the code the probe interrupted, on a live kernel stack (task,
        // IRQ or exception), which stays mapped while it runs; at a
        // function's entry it points at the return address the call pushed.
        return unsafe { core::ptr::read((*self.0).sp as *const usize) };
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: As in `arg`; the helper reads the word with
        // `copy_from_kernel_nofault()`.
        unsafe {
            bindings::rl_entry_return_address(self.0) as usize
        }
    }

    /// The return value of a probed function that returns `int`: only the low
    /// 32 bits of the register are defined, so it is sign-extended from them.
    pub(crate) fn return_int(&self) -> i32 {
        self.return_value() as u32 as i32
    }

    /// The registers themselves, for C helpers that take `struct pt_regs *`.
    pub(crate) fn as_ptr(&self) -> *mut bindings::pt_regs {
        self.0
    }

    /// The probed function's return value, valid in a return handler.
    pub(crate) fn return_value(&self) -> usize {
        // `regs_return_value()` on x86-64, without a call.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: As in `arg`.
        return unsafe { (*self.0).ax };
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: As in `arg`.
        unsafe {
            bindings::rl_regs_return_value(self.0) as usize
        }
    }
}

const STATE_IDLE: i32 = 0;
const STATE_BUSY: i32 = 1;
const STATE_ARMED: i32 = 2;

/// A kprobe or kretprobe on one kernel function.
///
/// # Invariants
///
/// While `state` is `STATE_ARMED`, `raw` is registered with the kprobe core
/// (as a kprobe for [`Handler::Entry`], as a kretprobe otherwise) and its
/// handlers are trampolines made by this module's macros, which find the
/// `Probe` again with `container_of!`.  Only the thread that moved `state`
/// to `STATE_BUSY` touches `raw`'s fields.
#[pin_data(PinnedDrop)]
pub(crate) struct Probe {
    #[pin]
    raw: Opaque<bindings::kretprobe>,
    symbol: CString,
    role: &'static str,
    module: Option<&'static str>,
    handler: Handler,
    hits: AtomicU64,
    /// `STATE_IDLE`, `STATE_BUSY` (being armed or disarmed), `STATE_ARMED`.
    state: AtomicI32,
    /// Why the last registration failed, or `None`.
    error: UnavailableCell,
}

impl Probe {
    /// Creates an unarmed probe on `symbol`, playing `role` in refledger.
    /// `module` names the module `symbol` lives in, if it is not built in.
    pub(crate) fn new(
        symbol: CString,
        role: &'static str,
        module: Option<&'static str>,
        handler: Handler,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `struct kretprobe` is plain C data (integers, pointers
            // and nested structs of them), for which all zeroes is valid and is
            // the state `register_kprobe`/`register_kretprobe` expect.
            raw <- Opaque::ffi_init(|p: *mut bindings::kretprobe| unsafe {
                core::ptr::write_bytes(p, 0, 1)
            }),
            symbol,
            role,
            module,
            handler,
            hits: AtomicU64::new(0),
            state: AtomicI32::new(STATE_IDLE),
            error: UnavailableCell::new(),
        })
    }

    /// The symbol this probe is placed on.
    pub(crate) fn symbol(&self) -> &CStr {
        &self.symbol
    }

    /// The role this probe plays, as shown in the `probes` file.
    pub(crate) fn role(&self) -> &'static str {
        self.role
    }

    /// The module the probed function lives in, if not built in.
    pub(crate) fn module(&self) -> Option<&'static str> {
        self.module
    }

    /// `"kprobe"` or `"kretprobe"`.
    pub(crate) fn kind(&self) -> &'static str {
        match self.handler {
            Handler::Entry(_) => "kprobe",
            Handler::Return { .. } => "kretprobe",
        }
    }

    /// How many times the probed function was entered while armed.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether the probe is armed now.
    pub(crate) fn armed(&self) -> bool {
        self.state.load(Ordering::Acquire) == STATE_ARMED
    }

    /// The error of the last failed [`Probe::arm`], if the probe is unarmed
    /// because of one.
    pub(crate) fn error(&self) -> Option<Unavailable> {
        self.error.get()
    }

    /// Hits the kprobe core could not deliver: the probe fired while another
    /// kprobe handler was running on the CPU, or (kretprobes) more instances
    /// were live than it had room for.
    pub(crate) fn missed(&self) -> u64 {
        let raw = self.raw.get();
        // SAFETY: `raw` is valid; the counters are plain words the kprobe core
        // updates in place, and a racy read of them is only a stale count.
        let (kp, rp) = unsafe {
            (
                core::ptr::read_volatile(&raw const (*raw).kp.nmissed),
                core::ptr::read_volatile(&raw const (*raw).nmissed),
            )
        };
        kp as u64 + rp as u64
    }

    /// Registers the probe.  Does nothing and returns `Ok` if it is armed
    /// already.  On failure the probe stays unarmed and remembers the error
    /// for the `probes` file.  Must be called from process context: it sleeps.
    pub(crate) fn arm(self: Pin<&Self>) -> Result {
        if self
            .state
            .compare_exchange(STATE_IDLE, STATE_BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return if self.armed() { Ok(()) } else { Err(EBUSY) };
        }
        let raw = self.raw.get();
        // SAFETY: We own `raw` exclusively while `state` is `STATE_BUSY` (see
        // the type invariants); it is unregistered, so the kprobe core does not
        // touch it.  A previous registration may have left fields set, so it
        // is cleared first, as the core requires.  `self.symbol` outlives the
        // registration because `Drop` unregisters first.
        let ret = unsafe {
            core::ptr::write_bytes(raw, 0, 1);
            (*raw).kp.symbol_name = self.symbol.as_char_ptr();
            match self.handler {
                Handler::Entry(pre) => {
                    (*raw).kp.pre_handler = Some(pre);
                    bindings::register_kprobe(&raw mut (*raw).kp)
                }
                Handler::Return { entry, exit } => {
                    (*raw).entry_handler = Some(entry);
                    (*raw).handler = Some(exit);
                    (*raw).data_size = core::mem::size_of::<ProbeData>();
                    // 0 lets the core choose: max(10, 2 * number of CPUs).
                    (*raw).maxactive = 0;
                    bindings::register_kretprobe(raw)
                }
            }
        };
        let res = to_result(ret);
        match res {
            Ok(()) => {
                self.error.set(None);
                // INVARIANT: `raw` was registered just above.
                self.state.store(STATE_ARMED, Ordering::Release);
            }
            Err(e) => {
                self.error.set(Some(Unavailable::from_error(e)));
                self.state.store(STATE_IDLE, Ordering::Release);
            }
        }
        res
    }

    /// Unregisters the probe if it is armed.  On return no handler of this
    /// probe is running or will run.  Must be called from process context.
    pub(crate) fn disarm(&self) {
        if self
            .state
            .compare_exchange(
                STATE_ARMED,
                STATE_BUSY,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let raw = self.raw.get();
        // SAFETY: `state` was `STATE_ARMED`, so `raw` is registered as the
        // kind its handler says (type invariants), and we now own it.  The
        // unregister functions wait for running handlers to finish.
        unsafe {
            match self.handler {
                Handler::Entry(_) => bindings::unregister_kprobe(&raw mut (*raw).kp),
                Handler::Return { .. } => bindings::unregister_kretprobe(raw),
            }
        }
        self.state.store(STATE_IDLE, Ordering::Release);
    }

    /// Finds the `Probe` that embeds `kp`.
    ///
    /// # Safety
    ///
    /// `kp` must be the `kp` member of the `raw` field of a live `Probe`.
    unsafe fn from_kprobe<'a>(kp: *mut bindings::kprobe) -> &'a Probe {
        // SAFETY: `kp` is the first member of a `kretprobe`, which is wrapped
        // in a transparent `Opaque` in `Probe::raw`, per the safety contract.
        unsafe {
            let rp = container_of!(kp, bindings::kretprobe, kp);
            &*container_of!(rp.cast::<Opaque<bindings::kretprobe>>(), Probe, raw)
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Probe {
    fn drop(self: Pin<&mut Self>) {
        self.disarm();
    }
}

/// The body of [`entry_handler!`]'s trampolines: counts the hit and calls
/// `f`, inlined so that the call is direct.
///
/// # Safety
///
/// `kp` must be a kprobe registered by [`Probe::arm`] and `regs` the
/// registers of the probed function, as the kprobe core passes them.
#[inline(always)]
pub(crate) unsafe fn pre_trampoline(
    kp: *mut bindings::kprobe,
    regs: *mut bindings::pt_regs,
    f: impl Fn(&Regs),
) -> ffi::c_int {
    // SAFETY: Only `Probe::arm` registers kprobes, per the safety contract.
    let probe = unsafe { Probe::from_kprobe(kp) };
    probe.hits.fetch_add(1, Ordering::Relaxed);
    f(&Regs(regs));
    // 0: let the probed instruction run as usual.
    0
}

/// Finds the probe and scratch data of a kretprobe instance.
///
/// # Safety
///
/// `ri` must be an instance of a kretprobe registered by [`Probe::arm`],
/// passed to one of its handlers, which are still running.
#[inline(always)]
unsafe fn instance<'a>(ri: *mut bindings::kretprobe_instance) -> (&'a Probe, *mut ProbeData) {
    // SAFETY: Per the safety contract, `ri` belongs to a kretprobe embedded in
    // a `Probe`, whose `kp` is its first member.
    unsafe {
        let rp = bindings::rl_get_kretprobe(ri);
        (Probe::from_kprobe(&raw mut (*rp).kp), instance_data(ri))
    }
}

/// The scratch data of a kretprobe instance, found without a call: the data
/// area (`ri->data`, a flexible array) starts right after the instance's
/// fixed members, which `helpers.c` asserts at build time.  The return
/// trampoline needs only this; a call to C for it cost about 20 instructions
/// on every return of an open(2) or a mount.
///
/// # Safety
///
/// `ri` must be an instance of a kretprobe registered by [`Probe::arm`],
/// passed to one of its handlers, which are still running.
#[inline(always)]
unsafe fn instance_data(ri: *mut bindings::kretprobe_instance) -> *mut ProbeData {
    // SAFETY: Per the safety contract, `ri` is a live instance whose data
    // area of `size_of::<ProbeData>()` bytes follows its fixed members,
    // `size_of::<kretprobe_instance>()` bytes, pointer-aligned (the struct's
    // alignment is a pointer's).
    unsafe { ri.add(1).cast() }
}

/// The body of [`return_handler!`]'s entry trampolines: counts the hit,
/// clears the instance's data and calls `f`, inlined so that the call is
/// direct.
///
/// # Safety
///
/// `ri` must be an instance of a kretprobe registered by [`Probe::arm`] and
/// `regs` the registers at function entry, as the kprobe core passes them.
#[inline(always)]
pub(crate) unsafe fn entry_trampoline(
    ri: *mut bindings::kretprobe_instance,
    regs: *mut bindings::pt_regs,
    f: impl Fn(&Regs, &mut ProbeData) -> bool,
) -> ffi::c_int {
    // SAFETY: Per this function's safety contract.
    let (probe, data) = unsafe { instance(ri) };
    probe.hits.fetch_add(1, Ordering::Relaxed);
    // SAFETY: The instance's data area is ours until the exit handler ran;
    // nobody else accesses it.
    let data = unsafe { &mut *data };
    *data = [0; 6];
    if f(&Regs(regs), data) {
        return 0;
    }
    // Non-zero: do not arm the return handler for this call.
    1
}

/// The body of [`return_handler!`]'s return trampolines: calls `f`, inlined
/// so that the call is direct.
///
/// # Safety
///
/// `ri` must be an instance of a kretprobe registered by [`Probe::arm`],
/// whose entry trampoline returned 0, and `regs` the registers at function
/// return, as the kprobe core passes them.
#[inline(always)]
pub(crate) unsafe fn exit_trampoline(
    ri: *mut bindings::kretprobe_instance,
    regs: *mut bindings::pt_regs,
    f: impl Fn(&Regs, &ProbeData),
) -> ffi::c_int {
    // SAFETY: Per this function's safety contract.
    let data = unsafe { instance_data(ri) };
    // SAFETY: The entry handler filled the data area for this instance.
    f(&Regs(regs), unsafe { &*data });
    0
}

// SAFETY: The C struct in `raw` is only written by the thread that owns it
// through `state` (see the type invariants) and by the kprobe core, which
// does its own locking; everything else in `Probe` is atomic or immutable.
unsafe impl Sync for Probe {}

// SAFETY: Nothing in `Probe` is tied to the thread that created it.
unsafe impl Send for Probe {}
