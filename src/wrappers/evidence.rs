// SPDX-License-Identifier: GPL-2.0

//! Evidence captured when a probe fires: who, where from, and when.
//!
//! Capturing happens in probe handlers, in atomic context: everything here is
//! fixed-size, on the stack, and does not sleep.

use crate::{
    wrappers::bindings, wrappers::clock::now_ns, wrappers::debugfs::SeqFile, wrappers::kprobe::Regs,
};

/// How many frames of a stack are kept, starting at the probed function's
/// caller.
pub(crate) const STACK_DEPTH: usize = 6;

/// Frames unwound to find the caller: the handler's own frames and the kprobe
/// machinery's (about 8 with ORC) come first.  Unwinding is the dearest part
/// of a handler, so no more than needed.
const UNWIND_DEPTH: usize = 16;

/// A short name copied from the kernel, made safe to print as one
/// `key=value` token: bytes that are not printable ASCII, spaces and `=`
/// become `_`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Default for Name<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> Name<N> {
    /// The empty name.
    pub(crate) const EMPTY: Self = Self {
        bytes: [0; N],
        len: 0,
    };

    /// A name known when the module is built, such as `builtin`: made at
    /// compile time, so a probe handler does not copy it byte by byte.  `s`
    /// must be clean already (printable ASCII, no spaces or `=`) and fit.
    pub(crate) const fn literal(s: &[u8]) -> Self {
        // Evaluated at compile time, so a name that does not fit fails the
        // build.
        assert!(s.len() <= N && N <= u8::MAX as usize);
        let mut name = Self::EMPTY;
        let mut i = 0;
        while i < s.len() && i < N {
            name.bytes[i] = s[i];
            i += 1;
        }
        name.len = i as u8;
        name
    }

    /// Whether the name equals `s`.
    pub(crate) fn is(&self, s: &[u8]) -> bool {
        &self.bytes[..self.len as usize] == s
    }

    /// Copies up to `N` bytes of a NUL-terminated C string.
    ///
    /// # Safety
    ///
    /// `p` must be NULL or point to a NUL-terminated string, or to at least
    /// `N` readable bytes.
    pub(crate) unsafe fn from_c(p: *const kernel::ffi::c_char) -> Self {
        let mut name = Self {
            bytes: [0; N],
            len: 0,
        };
        if p.is_null() {
            return name;
        }
        let mut i = 0;
        while i < N {
            // SAFETY: Per the safety contract, bytes up to the NUL or `N` are
            // readable.
            let c = unsafe { *p.cast::<u8>().add(i) };
            if c == 0 {
                break;
            }
            name.bytes[i] = if c.is_ascii_graphic() && c != b'=' {
                c
            } else {
                b'_'
            };
            i += 1;
        }
        name.len = i as u8;
        name
    }

    /// Copies a byte string (for example a task's `comm`).
    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        let mut name = Self {
            bytes: [0; N],
            len: 0,
        };
        for (i, &c) in b.iter().take(N).take_while(|&&c| c != 0).enumerate() {
            name.bytes[i] = if c.is_ascii_graphic() && c != b'=' {
                c
            } else {
                b'_'
            };
            name.len = (i + 1) as u8;
        }
        name
    }

    /// All `N` bytes and how many of them are the name (printable ASCII
    /// by construction), for `debugfs::Line::name`.
    pub(crate) fn raw(&self) -> (&[u8; N], usize) {
        (&self.bytes, self.len as usize)
    }

    /// The name as text; `-` when empty.
    pub(crate) fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.bytes[..self.len as usize]) {
            Ok("") | Err(_) => "-",
            Ok(s) => s,
        }
    }
}

/// A task's name as the kernel keeps it (`task->comm`), copied raw: made
/// safe to print (as [`Name`] is) only when printed, since probe handlers
/// copy far more names than anyone reads.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Comm([u8; 16]);

impl Comm {
    /// No name.
    pub(crate) const EMPTY: Self = Self([0; 16]);
}

impl core::fmt::Display for Comm {
    /// Cleaned as [`Name::from_bytes`] cleans a name: up to the first NUL,
    /// with bytes that are not printable ASCII, spaces and `=` as `_`; `-`
    /// when empty.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(Name::<16>::from_bytes(&self.0).as_str())
    }
}

/// Whether the current task is in mount(2): a probe on a function both
/// mount(2) and in-kernel mounts reach (such as `fc_mount`'s callees) tells
/// them apart by this, a read of the saved system call number, instead of
/// unwinding a stack.
pub(crate) fn in_mount_syscall() -> bool {
    // SAFETY: `rl_in_mount_syscall` reads only the current task's flags and
    // its saved registers, which are always there.
    unsafe { bindings::rl_in_mount_syscall() }
}

/// Formats a time since boot as seconds with microseconds, like dmesg.
pub(crate) struct Secs(pub(crate) u64);

impl core::fmt::Display for Secs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        write!(
            f,
            "{}.{:06}",
            self.0 / 1_000_000_000,
            self.0 / 1000 % 1_000_000
        )
    }
}

/// Formats a kernel `dev_t` as `major:minor` (MINORBITS is 20).
pub(crate) struct DevT(pub(crate) u32);

impl core::fmt::Display for DevT {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.0 >> 20, self.0 & 0xfffff)
    }
}

/// What a probed call looked like: time, task, call site and stack.
#[derive(Clone, Copy, Default)]
pub(crate) struct Evidence {
    /// When, in nanoseconds since boot.
    pub(crate) time: u64,
    /// The address the probed function returns to.
    pub(crate) caller: usize,
    /// Return addresses from `caller` outwards; 0 past the end.
    pub(crate) stack: [usize; STACK_DEPTH],
    /// The task that made the call.
    pub(crate) pid: i32,
    /// Its name.
    pub(crate) comm: Comm,
    /// Whether the task was in mount(2), for a shallow capture that a
    /// system call number told apart from an in-kernel mount (see
    /// [`in_mount_syscall`]); printed as `syscall=mount`.
    pub(crate) in_mount: bool,
}

impl Evidence {
    /// No evidence.
    pub(crate) const EMPTY: Self = Self {
        time: 0,
        caller: 0,
        stack: [0; STACK_DEPTH],
        pid: 0,
        comm: Comm::EMPTY,
        in_mount: false,
    };

    /// Captures the current task and stack, for a call made from `caller`,
    /// unwinding from here: for handlers that have no registers, such as
    /// tracepoint probes.
    pub(crate) fn capture(caller: usize) -> Self {
        let mut raw = [0usize; UNWIND_DEPTH];
        // SAFETY: `raw` has room for `UNWIND_DEPTH` entries; unwinding the
        // current stack does not sleep.
        let n =
            unsafe { bindings::stack_trace_save(raw.as_mut_ptr().cast(), UNWIND_DEPTH as u32, 0) };
        let n = n as usize;
        Self::with_stack(caller, &raw[..n.min(UNWIND_DEPTH)])
    }

    /// Captures the current task and stack, for a call made from `caller`,
    /// unwinding from the probed function's registers.  This skips the
    /// frames of the handler and of the kprobe machinery, which are most of
    /// the cost of [`Evidence::capture`].  Never inlined: the unwinder
    /// costs hundreds of instructions, the call a few, and the handlers stay
    /// small.
    #[inline(never)]
    pub(crate) fn capture_regs(regs: &Regs, caller: usize) -> Self {
        // The probed function (on entry) or the caller (on return) comes
        // first, then the caller's callers.
        let mut raw = [0usize; STACK_DEPTH + 1];
        // SAFETY: `regs` are the registers the kprobe core passed to the
        // running handler; `raw` has room for its length; unwinding the
        // current stack does not sleep.
        let n = unsafe {
            bindings::rl_stack_trace_save_regs(
                regs.as_ptr(),
                raw.as_mut_ptr().cast(),
                raw.len() as u32,
            )
        } as usize;
        Self::with_stack(caller, &raw[..n.min(raw.len())])
    }

    /// [`Evidence::capture_regs`] if `stack`, else
    /// [`Evidence::capture_shallow`]: for probes that keep a stack only for
    /// the calls where it says something.  Left to the compiler to inline:
    /// at `c916453`, out of line, it cost a tmpfs mount and unmount 38
    /// instructions more than the copy its inlining makes.
    pub(crate) fn capture_if(regs: &Regs, caller: usize, stack: bool) -> Self {
        if stack {
            Self::capture_regs(regs, caller)
        } else {
            Self::capture_shallow(caller)
        }
    }

    /// The shallow evidence with the frames of `raw` from `caller` outwards.
    /// If the unwinder did not reach the caller, the caller alone is still
    /// known.
    fn with_stack(caller: usize, raw: &[usize]) -> Self {
        let mut ev = Self::capture_shallow(caller);
        if let Some(i) = raw.iter().position(|&a| a == caller) {
            for (d, s) in ev.stack.iter_mut().zip(&raw[i..]) {
                *d = *s;
            }
        }
        ev
    }

    /// Like [`Evidence::capture`] without the stack (only the caller), for a
    /// hot path whose stack says nothing new, such as a system call.
    ///
    /// Built field by field, not as [`Evidence::EMPTY`] filled in: the
    /// compiler cannot know that C writes all of `comm`, and kept the
    /// zeroing of the empty evidence on this hot path.
    pub(crate) fn capture_shallow(caller: usize) -> Self {
        let time = now_ns();
        let mut comm = core::mem::MaybeUninit::<[u8; 16]>::uninit();
        // SAFETY: `comm` has room for 16 bytes, the size of `task->comm`.
        // See `fill_shallow` for why the pid is read in C.
        let pid = unsafe { bindings::rl_current_task(comm.as_mut_ptr().cast()) };
        let mut stack = [0; STACK_DEPTH];
        stack[0] = caller;
        Self {
            time,
            caller,
            stack,
            pid,
            // SAFETY: `rl_current_task` copies all 16 bytes of the name
            // (a `memcpy` of `task->comm`, whose size it asserts).
            comm: Comm(unsafe { comm.assume_init() }),
            in_mount: false,
        }
    }

    /// Writes [`Evidence::capture_shallow`]'s evidence over `self`, in
    /// place: for a record whose evidence is written where it is kept,
    /// without a copy.  Every field is written.
    ///
    /// It spells out `capture_shallow`'s fields again on purpose.  Written
    /// as `*self = Self::capture_shallow(caller)`, the evidence was built on
    /// the stack and copied in (a `rep movsq` of 11 words in `open_exit`);
    /// and one writer through a raw pointer for both made `capture_shallow`
    /// copy its result out instead (16 more instructions in
    /// `on_deactivate_locked_super`).  Both measured in the disassembly.
    #[inline(always)]
    pub(crate) fn fill_shallow(&mut self, caller: usize) {
        self.time = now_ns();
        self.caller = caller;
        self.stack = [0; STACK_DEPTH];
        self.stack[0] = caller;
        // The task's pid and name, by one call to C.  The pid is read in C,
        // not by the crate's `Task::pid()`: on the 6.12 debug kernel that
        // read 0 in probe handlers (t07 saw `pid=0 comm=mount`), while
        // `task_pid_nr(current)` reads the right pid.
        // SAFETY: `comm` has room for 16 bytes, the size of `task->comm`.
        self.pid = unsafe { bindings::rl_current_task(self.comm.0.as_mut_ptr().cast()) };
        self.in_mount = false;
    }

    /// [`Evidence::capture_shallow`] for a call made in mount(2), which
    /// [`in_mount_syscall`] said: the stack would only show the system call.
    pub(crate) fn capture_in_mount(caller: usize) -> Self {
        Self {
            in_mount: true,
            ..Self::capture_shallow(caller)
        }
    }

    /// Prints `pid=.. comm=.. caller=<symbol>`, and ` syscall=mount` for
    /// [`Evidence::capture_in_mount`]'s (no newline).
    pub(crate) fn show_who(&self, m: &SeqFile) {
        crate::wrappers::debugfs::seq_print!(m, "pid={} comm={} caller=", self.pid, self.comm);
        m.symbol(self.caller);
        if self.in_mount {
            crate::wrappers::debugfs::seq_print!(m, " syscall=mount");
        }
    }

    /// Prints the stack, one `at <symbol>` line per frame, each indented by
    /// `indent`.
    pub(crate) fn show_stack(&self, m: &SeqFile, indent: &str) {
        for &a in self.stack.iter().take_while(|&&a| a != 0) {
            crate::wrappers::debugfs::seq_print!(m, "{}at ", indent);
            m.symbol(a);
            crate::wrappers::debugfs::seq_print!(m, "\n");
        }
    }
}

/// The bare name of the function containing `addr` (`%ps`), into `buf`.
pub(crate) fn symbol_name(addr: usize, buf: &mut [u8; 64]) -> &[u8] {
    // SAFETY: `buf` has room for its length; the lookup does not sleep.
    unsafe { bindings::rl_symbol_name(buf.as_mut_ptr().cast(), buf.len(), addr) };
    let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    &buf[..n]
}

/// The words of a small direct-mapped cache keyed by text addresses, for
/// [`SiteClass`] and [`CallSites`].
struct AddrSlots([core::sync::atomic::AtomicUsize; 32]);

impl AddrSlots {
    const fn new() -> Self {
        Self([const { core::sync::atomic::AtomicUsize::new(0) }; 32])
    }

    /// The word for `addr`.
    fn slot(&self, addr: usize) -> &core::sync::atomic::AtomicUsize {
        &self.0[(addr >> 2) % self.0.len()]
    }
}

/// A small lock-free cache of "is this call site in one of these
/// functions", so a probe handler looks a call site up in kallsyms once, not
/// on every hit.  Direct-mapped; a collision only costs a lookup.
pub(crate) struct SiteClass {
    keys: AddrSlots,
}

impl SiteClass {
    /// An empty cache.
    pub(crate) const fn new() -> Self {
        Self {
            keys: AddrSlots::new(),
        }
    }

    /// Whether `addr` lies in a function named one of `names`.  A slot keeps
    /// the address shifted left by one (kernel text addresses all have their
    /// top bit set, so nothing is lost) with the answer in bit 0.
    pub(crate) fn is(&self, addr: usize, names: &[&[u8]]) -> bool {
        use core::sync::atomic::Ordering;
        let slot = self.keys.slot(addr);
        let key = addr << 1;
        let cached = slot.load(Ordering::Relaxed);
        if cached & !1 == key {
            return cached & 1 == 1;
        }
        let mut buf = [0u8; 64];
        let yes = names.contains(&symbol_name(addr, &mut buf));
        slot.store(key | usize::from(yes), Ordering::Relaxed);
        yes
    }
}

static RETURN_HOOKS: SiteClass = SiteClass::new();

/// A small lock-free set of return addresses one probe saw, for another
/// probe to ask whether a call returns to the same place.  Direct-mapped
/// and lossy: a site that shares its slot with another is forgotten, so
/// [`CallSites::has`] may say no for a site added, but never says yes for
/// one that was not.
pub(crate) struct CallSites {
    keys: AddrSlots,
}

impl CallSites {
    /// An empty set.
    pub(crate) const fn new() -> Self {
        Self {
            keys: AddrSlots::new(),
        }
    }

    /// Adds `addr`, a return address (never 0).  Stores only a new site, so
    /// that handlers hitting a known one do not write a shared line.  A
    /// return hook's trampoline is not added: a kretprobe, fprobe or the
    /// function graph tracer that hooked the probed function's return
    /// before this probe ran left its trampoline where the caller's return
    /// address was, and every hooked function returns to it.
    pub(crate) fn add(&self, addr: usize) {
        use core::sync::atomic::Ordering;
        let slot = self.keys.slot(addr);
        if slot.load(Ordering::Relaxed) != addr
            && !RETURN_HOOKS.is(
                addr,
                &[
                    b"arch_rethook_trampoline",
                    b"return_to_handler",
                    b"__kretprobe_trampoline",
                ],
            )
        {
            slot.store(addr, Ordering::Relaxed);
        }
    }

    /// Whether `addr` was added and not forgotten since.
    pub(crate) fn has(&self, addr: usize) -> bool {
        use core::sync::atomic::Ordering;
        addr != 0 && self.keys.slot(addr).load(Ordering::Relaxed) == addr
    }
}

/// Whether `addr` is an error pointer or NULL, like C's `IS_ERR_OR_NULL`.
pub(crate) fn is_err_or_null(addr: usize) -> bool {
    addr == 0 || addr >= (-(kernel::bindings::MAX_ERRNO as isize)) as usize
}

/// The name of module `m`, or `builtin`.
///
/// # Safety
///
/// `m` must be NULL or a live module.
pub(crate) unsafe fn module_name(m: *mut bindings::module) -> Name<32> {
    if m.is_null() {
        const BUILTIN: Name<32> = Name::literal(b"builtin");
        return BUILTIN;
    }
    // SAFETY: Per the safety contract.
    unsafe { Name::from_c((*m).name.as_ptr()) }
}
