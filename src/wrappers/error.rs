// SPDX-License-Identifier: GPL-2.0

//! refledger's own error type: why something it needs from the kernel is
//! unavailable, and a cell that keeps one where any context can read it.
//!
//! A probe that does not register, a tracepoint that does not exist, a
//! superblock walk whose lock cannot be found: none of these fails the
//! load.  Each is kept, listed in the files as `error=<errno>` (what the
//! kernel said, as users know it; for kprobes with a reason in words), and
//! never passed around as a bare integer.

use core::sync::atomic::{AtomicI32, Ordering};
use kernel::prelude::*;

/// Why a mechanism refledger wanted is not available.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The symbol or tracepoint does not exist: renamed, inlined, or its
    /// module is not loaded.
    NotFound,
    /// The kernel refuses to probe it: blacklisted, or not a function
    /// entry.
    NotProbeable,
    /// The address is not an instruction boundary.
    NotBoundary,
    /// It is probed already, in a way that excludes another probe.
    AlreadyProbed,
    /// Out of memory.
    NoMemory,
    /// Any other error the kernel returned.
    Other(Error),
}

impl Unavailable {
    /// What a kernel error means for a probe or a lookup.
    pub(crate) fn from_error(e: Error) -> Self {
        match e {
            e if e == ENOENT => Self::NotFound,
            e if e == EINVAL => Self::NotProbeable,
            e if e.to_errno() == -(crate::wrappers::bindings::EILSEQ as i32) => Self::NotBoundary,
            e if e == EEXIST => Self::AlreadyProbed,
            e if e == ENOMEM => Self::NoMemory,
            e => Self::Other(e),
        }
    }

    /// From a negative errno returned by C, or `None` for 0.
    pub(crate) fn from_errno(errno: i32) -> Option<Self> {
        (errno != 0).then(|| Self::from_error(Error::from_errno(errno)))
    }

    /// The kernel's error.
    pub(crate) fn to_error(self) -> Error {
        match self {
            Self::NotFound => ENOENT,
            Self::NotProbeable => EINVAL,
            Self::NotBoundary => Error::from_errno(-(crate::wrappers::bindings::EILSEQ as i32)),
            Self::AlreadyProbed => EEXIST,
            Self::NoMemory => ENOMEM,
            Self::Other(e) => e,
        }
    }

    /// The negative errno, as the files print it.
    pub(crate) fn to_errno(self) -> i32 {
        self.to_error().to_errno()
    }

    /// Why, in words, as the `probes` file prints it.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "symbol not found (renamed, inlined, or module not loaded)",
            Self::NotProbeable => "symbol cannot be probed (blacklisted or not a function entry)",
            Self::NotBoundary => "address is not an instruction boundary",
            Self::AlreadyProbed => "already probed",
            Self::NoMemory => "out of memory",
            Self::Other(_) => "registration failed",
        }
    }
}

impl From<Unavailable> for Error {
    fn from(u: Unavailable) -> Self {
        u.to_error()
    }
}

/// An [`Unavailable`], or none, that any context reads without a lock:
/// set where a probe is armed or disarmed, read by the files.
///
/// # Invariants
///
/// The atomic holds 0 (none) or the negative errno of an [`Unavailable`].
pub(crate) struct UnavailableCell(AtomicI32);

impl UnavailableCell {
    /// A cell with nothing in it.
    pub(crate) const fn new() -> Self {
        // INVARIANT: 0 is "none".
        Self(AtomicI32::new(0))
    }

    /// Keeps `u`, or clears the cell with `None`.
    pub(crate) fn set(&self, u: Option<Unavailable>) {
        // INVARIANT: `to_errno` is negative for every `Unavailable`.
        self.0
            .store(u.map_or(0, Unavailable::to_errno), Ordering::Relaxed);
    }

    /// What the cell keeps.
    pub(crate) fn get(&self) -> Option<Unavailable> {
        Unavailable::from_errno(self.0.load(Ordering::Relaxed))
    }
}
