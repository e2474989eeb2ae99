// SPDX-License-Identifier: GPL-2.0

//! Probes on kernel tracepoints found by name.
//!
//! Not every tracepoint is exported to modules (`module:module_put` is not),
//! so [`TracepointProbe`] finds the `struct tracepoint` by name with
//! `for_each_kernel_tracepoint`, registers a probe function on it, and
//! unregisters on drop, waiting until no probe call is in flight.

use crate::wrappers::{
    bindings, compat,
    error::{Unavailable, UnavailableCell},
};
use core::ffi::c_void;
use kernel::prelude::*;

/// A probe function registered on a tracepoint.
///
/// # Invariants
///
/// When `tp` is not null, `probe` is registered on it with a null data
/// pointer.
pub(crate) struct TracepointProbe {
    name: &'static CStr,
    tp: *mut bindings::tracepoint,
    probe: *mut c_void,
    /// `None` when armed or never tried, else why it is not armed.
    error: UnavailableCell,
}

struct Search {
    name: &'static CStr,
    found: *mut bindings::tracepoint,
}

/// # Safety
///
/// Called by `for_each_kernel_tracepoint` with `priv_` the `Search` that
/// `TracepointProbe::new` passed.
unsafe extern "C" fn match_name(tp: *mut bindings::tracepoint, priv_: *mut c_void) {
    // SAFETY: Per the safety contract; `tp` is a built-in tracepoint, whose
    // name is a static C string.
    unsafe {
        let s = &mut *priv_.cast::<Search>();
        if s.found.is_null()
            && compat::cstr_bytes(CStr::from_char_ptr((*tp).name)) == compat::cstr_bytes(s.name)
        {
            s.found = tp;
        }
    }
}

impl TracepointProbe {
    /// Registers `probe` on the built-in tracepoint `name`.  A failure is
    /// remembered for the `probes` file, not returned: refledger works on
    /// without it.
    ///
    /// # Safety
    ///
    /// `probe` must be a function whose signature matches the tracepoint's
    /// prototype, with a leading `*mut c_void` data argument, and must stay
    /// valid until the returned value is dropped.
    pub(crate) unsafe fn new(name: &'static CStr, probe: *mut c_void) -> Self {
        let mut search = Search {
            name,
            found: core::ptr::null_mut(),
        };
        // SAFETY: `match_name` has the callback's signature and `search`
        // outlives the call.
        unsafe { bindings::for_each_kernel_tracepoint(Some(match_name), (&raw mut search).cast()) };
        let mut me = Self {
            name,
            tp: core::ptr::null_mut(),
            probe,
            error: UnavailableCell::new(),
        };
        if search.found.is_null() {
            me.error.set(Some(Unavailable::NotFound));
            return me;
        }
        // SAFETY: `found` is a built-in tracepoint; the caller vouches for
        // `probe`.
        let ret = unsafe {
            bindings::tracepoint_probe_register(search.found, probe, core::ptr::null_mut())
        };
        if ret == 0 {
            // INVARIANT: Registered just above.
            me.tp = search.found;
        } else {
            me.error.set(Unavailable::from_errno(ret));
        }
        me
    }

    /// The tracepoint's name.
    pub(crate) fn name(&self) -> &'static CStr {
        self.name
    }

    /// Whether the probe is registered.
    pub(crate) fn armed(&self) -> bool {
        !self.tp.is_null()
    }

    /// Why it is not, if it is not.
    pub(crate) fn error(&self) -> Option<Unavailable> {
        self.error.get()
    }
}

impl Drop for TracepointProbe {
    fn drop(&mut self) {
        if self.tp.is_null() {
            return;
        }
        // SAFETY: Registered with these arguments (type invariants).  After
        // the synchronization no call of `probe` is running or will run.
        unsafe {
            bindings::tracepoint_probe_unregister(self.tp, self.probe, core::ptr::null_mut());
            bindings::rl_tracepoint_synchronize_unregister();
        }
    }
}

// SAFETY: The raw pointers are a static tracepoint and a function; the
// registration is only changed in `new` and `drop`.
unsafe impl Send for TracepointProbe {}
// SAFETY: `&TracepointProbe` only reads.
unsafe impl Sync for TracepointProbe {}
