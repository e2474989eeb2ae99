// SPDX-License-Identifier: GPL-2.0

//! A debugfs directory of read-only seq_file files, plus write handlers.
//!
//! 6.12's `kernel` crate has no debugfs or seq_file abstraction, so this is a
//! small one: a [`Dir`] owns a directory and the files in it and removes them
//! all when dropped.  Each file shows an object implementing [`Show`] (and,
//! for a control file, [`Store`]).  One `file_operations` table serves every
//! file; the file's entry in the directory says which object to show.

use crate::{wrappers::bindings, wrappers::compat};
use core::{ffi::c_void, fmt, ptr};
use kernel::{c_str, error::from_err_ptr, ffi, prelude::*, str::CStr, types::Opaque, ThisModule};

const PAGE: usize = 4096;
/// The largest buffer preallocated from a size hint; beyond it the seq_file
/// core grows the buffer as usual.
const MAX_PREALLOC: usize = 8 << 20;

/// The largest write a control file accepts, in bytes.
pub(crate) const MAX_WRITE: usize = 256;

/// An open seq_file, to print into from [`Show::show`].
pub(crate) struct SeqFile(*mut bindings::seq_file);

impl SeqFile {
    /// Appends formatted text.  Output that does not fit is retried by the
    /// seq_file core with a larger buffer.
    pub(crate) fn print(&self, args: fmt::Arguments<'_>) {
        // SAFETY: `self.0` is the seq_file passed to the show callback that
        // created this `SeqFile`.  `%pA` takes a `fmt::Arguments` pointer.
        unsafe {
            bindings::seq_printf(
                self.0,
                c_str!("%pA").as_char_ptr(),
                core::ptr::from_ref(&args).cast::<c_void>(),
            )
        };
    }

    /// Appends `addr` as `symbol+offset/size` (the `%pS` format).
    pub(crate) fn symbol(&self, addr: usize) {
        // SAFETY: As in `print`; `%pS` takes any address and only looks it up
        // in kallsyms.
        unsafe { bindings::seq_printf(self.0, c_str!("%pS").as_char_ptr(), addr as *const c_void) };
    }

    /// Appends `ptr` as a hashed id (the `%p` format): stable for one boot,
    /// never the raw address.
    pub(crate) fn hashed(&self, ptr: usize) {
        self.hashed_as(c_str!("%p"), ptr);
    }

    /// Appends `ptr` hashed, formatted by `fmt`, a C format whose only
    /// conversion is one `%p` (such as `c_str!("sb=%p")`): one call where a key and
    /// its value would otherwise take two.
    pub(crate) fn hashed_as(&self, fmt: &CStr, ptr: usize) {
        // SAFETY: As in `print`; per this function's contract, `fmt` takes
        // one pointer argument, which `%p` only hashes.
        unsafe { bindings::seq_printf(self.0, fmt.as_char_ptr(), ptr as *const c_void) };
    }
}

/// `00` to `99`, for [`Line::u64_width`].
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// The bytes of a C string kept in a fixed array, up to its NUL (all of
/// them when there is none).
// `c_char` is `i8` in some kernels' crates and `u8` in others.
#[allow(clippy::unnecessary_cast)]
fn c_bytes(s: &[kernel::ffi::c_char]) -> impl Iterator<Item = u8> + '_ {
    s.iter().take_while(|&&c| c != 0).map(|&c| c as u8)
}

/// The longest line a [`Line`] holds, newline included; longer lines are cut.
const LINE_MAX: usize = 512;

/// One line of a debugfs file, built without `core::fmt`.
///
/// A `seq_print!` goes through `vsnprintf`'s `%pA` into `core::fmt`, whose
/// `Formatter` dispatches every piece through trait objects: on a read of
/// 10,000 superblocks that was most of the read's instructions.  The lines
/// a file has one of per record are built here from plain pieces and
/// appended with one `seq_write`, or, for a line begun with
/// [`Line::begin`], built in the seq_file's buffer itself: the copy
/// `seq_write` makes was a tenth of that read.
///
/// # Invariants
///
/// - `len <= LINE_MAX - 1`: one byte is always left for the newline.
/// - `ext` is null, and the line is in `own`; or it points to `LINE_MAX`
///   bytes of the free part of the buffer of the seq_file `seq`, which
///   `seq`'s `count` was `at` when [`Line::begin`] set `ext`, and which only
///   the show call that began the line writes.
pub(crate) struct Line {
    own: [u8; LINE_MAX],
    ext: *mut u8,
    seq: *mut bindings::seq_file,
    at: usize,
    len: usize,
}

impl Line {
    /// An empty line.
    pub(crate) fn new() -> Self {
        // INVARIANT: `len` is 0 and `ext` null.
        Self {
            own: [0; LINE_MAX],
            ext: ptr::null_mut(),
            seq: ptr::null_mut(),
            at: 0,
            len: 0,
        }
    }

    /// The bytes the line is built in.  The reference lives only within a
    /// method of `Line`, none of which calls anything that could write the
    /// seq_file.
    #[inline(always)]
    fn buf(&mut self) -> &mut [u8; LINE_MAX] {
        if self.ext.is_null() {
            &mut self.own
        } else {
            // SAFETY: `ext` points to `LINE_MAX` bytes of the seq_file's
            // buffer that only this show call writes (type invariants), and
            // nothing else writes them while this reference lives.
            unsafe { &mut *self.ext.cast::<[u8; LINE_MAX]>() }
        }
    }

    /// Begins an empty line in `m`'s own buffer, where a whole line fits
    /// (else in the line's own array), to be ended with [`Line::end`] and
    /// nothing printed to `m` in between.  The line is then written where
    /// it will stay, with no copy.
    pub(crate) fn begin(&mut self, m: &SeqFile) {
        let mut at = 0usize;
        // SAFETY: `m.0` is the seq_file passed to the show callback that
        // created `m`; the helper only reads its `buf`, `size` and `count`.
        let ext = unsafe { bindings::rl_seq_room(m.0, LINE_MAX, &mut at) };
        // INVARIANT: `rl_seq_room` returns null or `LINE_MAX` free bytes at
        // `count` (`at`), which the show call running owns; `len` is 0.
        self.ext = ext.cast();
        self.seq = m.0;
        self.at = at;
        self.len = 0;
    }

    /// Appends `b`, as much of it as fits.  Inlined, so that the copy of a
    /// literal, whose length is then known, is a few moves rather than a
    /// call to `memcpy`.
    #[inline(always)]
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let len = self.len;
        let room = LINE_MAX - 1 - len;
        // The whole of `b` in a branch of its own, whose length is known
        // for a literal.
        let n = if b.len() <= room {
            self.buf()[len..len + b.len()].copy_from_slice(b);
            b.len()
        } else {
            self.buf()[len..len + room].copy_from_slice(&b[..room]);
            room
        };
        // INVARIANT: `n` is at most `room`, so `len` stays below `LINE_MAX`.
        self.len += n;
        self
    }

    /// Appends `s`.
    #[inline(always)]
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends a name kept as `N` bytes of which the first `len` are used
    /// (`evidence::Name::raw`), or `-` when it is empty.  All `N` bytes are
    /// copied: a copy of a known size is a few moves, not a `memcpy` call,
    /// and what lies past `len` is overwritten by what comes next or never
    /// written out.
    #[inline(always)]
    pub(crate) fn name<const N: usize>(&mut self, (b, len): (&[u8; N], usize)) -> &mut Self {
        if len == 0 {
            return self.str("-");
        }
        let at = self.len;
        if at + N < LINE_MAX && len <= N {
            self.buf()[at..at + N].copy_from_slice(b);
            // INVARIANT: `len <= N` and `self.len + N < LINE_MAX`.
            self.len += len;
            self
        } else {
            self.bytes(&b[..len.min(N)])
        }
    }

    /// Appends a NUL-terminated C string from a fixed array (such as a task's
    /// `comm`) as one `key=value` token, cleaned as `evidence::Name` cleans
    /// names: bytes that are not printable ASCII, spaces and `=` become `_`;
    /// `-` when empty.
    pub(crate) fn cstr(&mut self, s: &[kernel::ffi::c_char]) -> &mut Self {
        if c_bytes(s).next().is_none() {
            return self.str("-");
        }
        for c in c_bytes(s) {
            let c = if c.is_ascii_graphic() && c != b'=' {
                c
            } else {
                b'_'
            };
            self.bytes(&[c]);
        }
        self
    }

    /// Appends a path from a NUL-terminated array, escaped as
    /// `/proc/self/mountinfo` escapes one: space, tab, newline, backslash
    /// and bytes that are not printable ASCII as `\ooo` (octal), so the
    /// path stays one token; `-` when empty.
    pub(crate) fn path(&mut self, s: &[kernel::ffi::c_char]) -> &mut Self {
        if c_bytes(s).next().is_none() {
            return self.str("-");
        }
        for c in c_bytes(s) {
            if c.is_ascii_graphic() && c != b'\\' {
                self.bytes(&[c]);
            } else {
                self.bytes(&[b'\\', b'0' + (c >> 6), b'0' + (c >> 3 & 7), b'0' + (c & 7)]);
            }
        }
        self
    }

    /// Appends `v` in decimal, at least `width` digits (zero-padded, up to
    /// 20), written in place from the last digit back, two digits a step
    /// from a table: on a read of 10,000 superblocks the one-digit loop was
    /// the largest single cost.
    pub(crate) fn u64_width(&mut self, v: u64, width: usize) -> &mut Self {
        let digits = v.checked_ilog10().unwrap_or(0) as usize + 1;
        let n = digits.max(width.min(20));
        if n > LINE_MAX - 1 - self.len {
            return self;
        }
        let start = self.len;
        let buf = self.buf();
        let mut v = v;
        let mut i = start + n;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        }
        if v >= 10 {
            let d = v as usize * 2;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        } else {
            i -= 1;
            buf[i] = b'0' + v as u8;
        }
        // The zero padding, when `width` asks for more than the digits (a
        // test first: an empty `fill` is still a call to `memset`).
        if i > start {
            buf[start..i].fill(b'0');
        }
        // INVARIANT: checked above that `n` bytes fit before the last.
        self.len += n;
        self
    }

    /// Appends `v` in decimal.  Inlined, so that the commonest number, one
    /// digit, costs no call.
    #[inline(always)]
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        let at = self.len;
        if v < 10 && at < LINE_MAX - 1 {
            self.buf()[at] = b'0' + v as u8;
            // INVARIANT: checked above that a byte fits before the last.
            self.len += 1;
            return self;
        }
        self.u64_width(v, 1)
    }

    /// Appends `v` in decimal, with its sign.
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.str("-");
        }
        self.u64(v.unsigned_abs())
    }

    /// Appends `v` as 16 lower-case hex digits, as `%p` prints a hashed
    /// pointer on a 64-bit kernel.
    pub(crate) fn hex16(&mut self, v: u64) -> &mut Self {
        let mut d = [0u8; 16];
        for (i, c) in d.iter_mut().enumerate() {
            *c = b"0123456789abcdef"[(v >> (60 - 4 * i)) as usize & 0xf];
        }
        self.bytes(&d)
    }

    /// Appends a time in nanoseconds as seconds with six decimals, as
    /// `evidence::Secs` prints it: `-` for 0 (never happened).
    pub(crate) fn secs(&mut self, ns: u64) -> &mut Self {
        if ns == 0 {
            return self.str("-");
        }
        self.u64(ns / 1_000_000_000)
            .str(".")
            .digits6((ns / 1000 % 1_000_000) as usize)
    }

    /// Appends `v` (below 1,000,000) as exactly six digits, three pairs
    /// from the table: the fraction of every time a file prints.
    fn digits6(&mut self, v: usize) -> &mut Self {
        if v >= 1_000_000 || self.len + 6 > LINE_MAX - 1 {
            return self.u64_width(v as u64, 6);
        }
        let i = self.len;
        let buf = self.buf();
        for (k, pair) in [v / 10_000, v / 100 % 100, v % 100].into_iter().enumerate() {
            buf[i + 2 * k..i + 2 * k + 2].copy_from_slice(&DIGIT_PAIRS[2 * pair..2 * pair + 2]);
        }
        // INVARIANT: checked above that six bytes fit before the last.
        self.len += 6;
        self
    }

    /// Appends a kernel `dev_t` as `major:minor`, as `evidence::DevT` prints
    /// it (MINORBITS is 20).
    pub(crate) fn dev(&mut self, dev: u32) -> &mut Self {
        self.u64(u64::from(dev >> 20))
            .str(":")
            .u64(u64::from(dev & 0xfffff))
    }

    /// Appends the line to `m` as it is, without a newline: the end of a
    /// line begun with `seq_print!`.
    pub(crate) fn write(&mut self, m: &SeqFile) {
        let n = self.len;
        self.put(m, n);
    }

    /// Ends the line with a newline and appends it to `m`.
    pub(crate) fn end(&mut self, m: &SeqFile) {
        let n = self.len;
        // The invariant left room for the newline.
        self.buf()[n] = b'\n';
        self.put(m, n + 1);
    }

    /// Appends the first `n` bytes of the line to `m`, and empties it.
    fn put(&mut self, m: &SeqFile, n: usize) {
        if self.ext.is_null() {
            // SAFETY: `m.0` is the seq_file passed to the show callback that
            // created `m`; `seq_write` copies `n` initialised bytes of `own`,
            // at most its length.  Output that does not fit is retried by the
            // seq_file core with a larger buffer, as with `seq_printf`.
            unsafe { bindings::seq_write(m.0, self.own.as_ptr().cast::<c_void>(), n) };
        } else if m.0 == self.seq {
            // Already in place: only the seq_file's count moves past it.  If
            // something was printed to `m` since `begin` (which `begin`
            // forbids), the count moved and the line is left out: its bytes
            // may have been written over.
            // SAFETY: As above; the helper moves `count` from `at` by `n`
            // only if it is still `at` and `n` bytes fit.
            unsafe { bindings::rl_seq_commit(m.0, self.at, n) };
        }
        // INVARIANT: `len` is 0 and `ext` null.
        self.ext = ptr::null_mut();
        self.len = 0;
    }
}

/// Prints into a [`SeqFile`] with `format!` syntax.
macro_rules! seq_print {
    ($m:expr, $($arg:tt)*) => {
        $m.print(format_args!($($arg)*))
    };
}
pub(crate) use seq_print;

/// An object whose state a debugfs file shows.
pub(crate) trait Show: Sync {
    /// Prints the whole file.
    fn show(&self, m: &SeqFile) -> Result;

    /// How large the output will be, roughly.  The seq_file core starts with
    /// a page and, when the output does not fit, doubles the buffer and calls
    /// `show` again from the start: a large file should say its size.
    fn size_hint(&self) -> usize {
        0
    }
}

/// An object that a debugfs file also accepts writes for.
pub(crate) trait Store: Show {
    /// Handles one write of at most [`MAX_WRITE`] bytes.  An error is returned
    /// to the writer and must leave the object unchanged.
    fn store(&self, input: &[u8]) -> Result;
}

/// What a file's inode points to: the object and how to show and store it.
struct Entry {
    name: &'static CStr,
    mode: u16,
    data: *const c_void,
    show: unsafe fn(*const c_void, &SeqFile) -> Result,
    size_hint: unsafe fn(*const c_void) -> usize,
    store: Option<unsafe fn(*const c_void, &[u8]) -> Result>,
}

/// # Safety
///
/// `data` must point to a live `T`.
unsafe fn show_erased<T: Show>(data: *const c_void, m: &SeqFile) -> Result {
    // SAFETY: Per the safety contract.
    unsafe { &*data.cast::<T>() }.show(m)
}

/// # Safety
///
/// `data` must point to a live `T`.
unsafe fn size_hint_erased<T: Show>(data: *const c_void) -> usize {
    // SAFETY: Per the safety contract.
    unsafe { &*data.cast::<T>() }.size_hint()
}

/// # Safety
///
/// `data` must point to a live `T`.
unsafe fn store_erased<T: Store>(data: *const c_void, input: &[u8]) -> Result {
    // SAFETY: Per the safety contract.
    unsafe { &*data.cast::<T>() }.store(input)
}

/// A debugfs directory and its files, all removed on drop.
///
/// Everything that can fail for want of memory is allocated first, with
/// [`Dir::new`] and [`Dir::add`]/[`Dir::add_rw`]; only [`Dir::publish`]
/// creates the directory and files.  A file can be opened the moment it
/// exists, even while the module is still initializing, and an open file
/// outlives the removal of the directory: so once the first file exists,
/// nothing may fail and free what it uses.  A file that debugfs cannot
/// create is logged and left out, as the kernel's debugfs API advises.
///
/// # Invariants
///
/// `dentry` is NULL or a directory created by `debugfs_create_dir`.  Each
/// file in it was created with `fops` and an entry of `entries` as its
/// private data; both live in boxes that outlive the directory.
pub(crate) struct Dir {
    dentry: *mut bindings::dentry,
    fops: Pin<KBox<Opaque<bindings::file_operations>>>,
    entries: KVec<KBox<Entry>>,
}

impl Dir {
    /// Prepares a directory, readable by root only; nothing is visible
    /// until [`Dir::publish`].
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let fops = KBox::pin_init(
            Opaque::ffi_init(|p: *mut bindings::file_operations| {
                // SAFETY: `p` is valid for writes; a zeroed `file_operations`
                // is valid (all members are optional) and we fill in the ones
                // we use.  The owner makes the VFS pin this module while one of
                // our files is open.
                unsafe {
                    core::ptr::write_bytes(p, 0, 1);
                    (*p).owner = module.as_ptr();
                    (*p).open = Some(open_trampoline);
                    (*p).read = Some(bindings::seq_read);
                    (*p).llseek = Some(bindings::seq_lseek);
                    (*p).release = Some(bindings::single_release);
                    (*p).write = Some(write_trampoline);
                }
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: No directory yet.
        Ok(Self {
            dentry: ptr::null_mut(),
            fops,
            entries: KVec::new(),
        })
    }

    /// Adds a read-only file `name` (mode 0400) that shows `data`.
    ///
    /// # Safety
    ///
    /// `data` must stay valid until this `Dir` is dropped.
    pub(crate) unsafe fn add<T: Show>(&mut self, name: &'static CStr, data: &T) -> Result {
        self.push(name, 0o400, data, None)
    }

    /// Adds a read-write file `name` (mode 0600) that shows `data` and passes
    /// writes to it.
    ///
    /// # Safety
    ///
    /// `data` must stay valid until this `Dir` is dropped.
    pub(crate) unsafe fn add_rw<T: Store>(&mut self, name: &'static CStr, data: &T) -> Result {
        self.push(name, 0o600, data, Some(store_erased::<T>))
    }

    /// The entry of a file to create, allocated now.  `store`, if given,
    /// must have been made for `T`.
    fn push<T: Show>(
        &mut self,
        name: &'static CStr,
        mode: u16,
        data: &T,
        store: Option<unsafe fn(*const c_void, &[u8]) -> Result>,
    ) -> Result {
        self.entries.push(
            KBox::new(
                Entry {
                    name,
                    mode,
                    data: core::ptr::from_ref(data).cast(),
                    show: show_erased::<T>,
                    size_hint: size_hint_erased::<T>,
                    store,
                },
                GFP_KERNEL,
            )?,
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// Creates `/sys/kernel/debug/<name>/` and the files added.  Fails only
    /// if the directory cannot be created, when no file exists yet.
    pub(crate) fn publish(&mut self, name: &CStr) -> Result {
        // SAFETY: `name` is a valid C string; a NULL parent means the debugfs
        // root.
        let dentry = from_err_ptr(unsafe {
            bindings::debugfs_create_dir(name.as_char_ptr(), ptr::null_mut())
        })?;
        // INVARIANT: `dentry` is the directory just created, without files.
        self.dentry = dentry;
        for entry in self.entries.iter() {
            let private = core::ptr::from_ref::<Entry>(entry)
                .cast_mut()
                .cast::<c_void>();
            // SAFETY: `self.dentry` is our directory; `fops` and the entry
            // are boxed and live until after the directory is removed.
            let file = unsafe {
                bindings::rl_debugfs_create_file(
                    entry.name.as_char_ptr(),
                    entry.mode,
                    self.dentry,
                    private,
                    self.fops.get(),
                )
            };
            if let Err(e) = from_err_ptr(file) {
                // `CStr` formats with `pr_warn!`'s formatter on both kernels
                // (`compat::CStrDisplay` is for `core::fmt`, which 7.x's
                // printing macros no longer use).
                pr_warn!(
                    "debugfs: cannot create {} ({:?}); left out\n",
                    entry.name,
                    e
                );
            }
        }
        Ok(())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if self.dentry.is_null() {
            return;
        }
        // SAFETY: `self.dentry` is our directory.  `debugfs_remove` removes it
        // and its files and waits for file operations in flight to finish.
        // A file still open after this keeps the module (the owner of
        // `fops`) loaded, so its release cannot come after `fops` and the
        // entries are freed: this runs from the module's exit, which only
        // runs once nothing holds the module.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

// SAFETY: The raw pointers are only used to create and remove debugfs
// entries, which any thread may do; the shown objects are `Sync`.
unsafe impl Send for Dir {}
// SAFETY: `&Dir` gives no access to anything.
unsafe impl Sync for Dir {}

/// # Safety
///
/// Called by the VFS to open one of our files, whose inode's private data is
/// an `Entry` (see [`Dir::create`]).
unsafe extern "C" fn open_trampoline(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> ffi::c_int {
    // SAFETY: `inode` and `file` are valid; `single_open_size` stores the
    // entry as the seq_file's private data for `show_trampoline`.  The entry
    // outlives the open file's operations (debugfs keeps it while they run).
    unsafe {
        let private = (*inode).i_private;
        let entry = &*private.cast::<Entry>();
        let size = (entry.size_hint)(entry.data).clamp(PAGE, MAX_PREALLOC);
        bindings::single_open_size(file, Some(show_trampoline), private, size)
    }
}

/// # Safety
///
/// Called by the seq_file core for a file opened by `open_trampoline`.
unsafe extern "C" fn show_trampoline(m: *mut bindings::seq_file, _v: *mut c_void) -> ffi::c_int {
    // SAFETY: `m->private` is the `Entry` given to `single_open`; debugfs
    // keeps it alive while a file operation runs.
    let entry = unsafe { &*(*m).private.cast::<Entry>() };
    // SAFETY: `entry.data` points to the `T` that `entry.show` was made for.
    match unsafe { (entry.show)(entry.data, &SeqFile(m)) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS for a write to a file opened by `open_trampoline`.
unsafe extern "C" fn write_trampoline(
    file: *mut bindings::file,
    buf: *const ffi::c_char,
    len: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: A file opened by `single_open` has its seq_file as private data,
    // whose private data is our `Entry`.
    let entry = unsafe {
        let m = (*file).private_data.cast::<bindings::seq_file>();
        &*(*m).private.cast::<Entry>()
    };
    let Some(store) = entry.store else {
        return EPERM.to_errno() as isize;
    };
    if len > MAX_WRITE {
        return EINVAL.to_errno() as isize;
    }
    let mut input = [0u8; MAX_WRITE];
    let mut reader = compat::user_slice(buf, len).reader();
    if let Err(e) = reader.read_slice(&mut input[..len]) {
        return e.to_errno() as isize;
    }
    // SAFETY: `entry.data` points to the `T` that `store` was made for.
    match unsafe { store(entry.data, &input[..len]) } {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}
