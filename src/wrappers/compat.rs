// SPDX-License-Identifier: GPL-2.0

//! What differs between the `kernel` crates refledger builds against, in one
//! place: 6.12's, and 7.x's (built with `--cfg rl_kernel_7`, set by Kbuild).
//!
//! - 7.x's `CStr` is `core::ffi::CStr`: its bytes are `to_bytes()`, not
//!   `as_bytes()`, and it has no `core::fmt::Display`.
//! - 7.x's `UserPtr` is a type of its own, not a `usize`.
//!
//! Differences in C APIs are decided in `helpers.c`, on what the kernel's
//! headers declare; the Rust side sees one API.

use kernel::{
    str::{BStr, CStr},
    uaccess::UserSlice,
};

/// The bytes of `s`, without its NUL.
pub(crate) fn cstr_bytes(s: &CStr) -> &[u8] {
    // Both crates give a `CStr` as a `BStr`, which dereferences to `[u8]`.
    let b: &BStr = s.as_ref();
    b
}

/// Shows a `CStr` with `{}` in `format_args!`, as the kernel's own `Display`
/// for it does in both crates: printable ASCII as is, other bytes as `\xNN`.
pub(crate) struct CStrDisplay<'a>(pub(crate) &'a CStr);

impl core::fmt::Display for CStrDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        for &c in cstr_bytes(self.0) {
            if (0x20..0x7f).contains(&c) {
                f.write_char(char::from(c))?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

/// The user buffer of a `write` file operation.
pub(crate) fn user_slice(buf: *const kernel::ffi::c_char, len: usize) -> UserSlice {
    #[cfg(not(rl_kernel_7))]
    let p = buf as usize;
    #[cfg(rl_kernel_7)]
    let p = kernel::uaccess::UserPtr::from_ptr(buf.cast_mut().cast());
    UserSlice::new(p, len)
}
