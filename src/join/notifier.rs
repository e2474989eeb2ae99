// SPDX-License-Identifier: GPL-2.0

//! The module notifier: modules coming and going.
//!
//! A module that loads may be one whose functions refledger probes
//! (`zfs.ko`): its probes are armed once it is live and disarmed before it
//! unloads.  Every module's coming and going is also told to the module
//! table, so a module's slot is never read after it is freed.  The
//! notifier block itself is the ledger's (registered by `audit::start`,
//! unregistered by `Ledger::stop_notifier`).

use crate::{
    tables::modules,
    wrappers::{bindings, compat, probes::ProbeSet},
};
use core::{
    ffi::c_void,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::prelude::*;

/// The probes, for the module notifier to arm and disarm those that live in
/// a module.  Published after they are built, cleared (with the notifier
/// unregistered first) before they are dropped.
static PROBES: AtomicPtr<ProbeSet> = AtomicPtr::new(core::ptr::null_mut());

/// Publishes the probe set to the module notifier, or (with `None`)
/// withdraws it.  The caller keeps a published set alive until it withdraws
/// it after `Ledger::stop_notifier`.
pub(crate) fn publish_probes(p: Option<&ProbeSet>) {
    PROBES.store(
        p.map_or(core::ptr::null_mut(), |p| core::ptr::from_ref(p).cast_mut()),
        Ordering::Release,
    );
}

/// Runs `f` on the published probe set, if there is one.  For audits:
/// the periodic one is stopped, and the files that run one are removed,
/// before the set is withdrawn.
pub(crate) fn with_probes<R>(f: impl FnOnce(&ProbeSet) -> R) -> Option<R> {
    let probes = PROBES.load(Ordering::Acquire);
    // SAFETY: A published set outlives its publication (see
    // `publish_probes`), and audits stop before it is withdrawn.
    unsafe { probes.as_ref() }.map(f)
}

/// # Safety
///
/// Called by the module notifier chain with a module's state change.
pub(crate) unsafe extern "C" fn module_notify(
    _nb: *mut bindings::notifier_block,
    action: kernel::ffi::c_ulong,
    data: *mut c_void,
) -> kernel::ffi::c_int {
    let coming = action == bindings::module_state_MODULE_STATE_COMING as kernel::ffi::c_ulong;
    let going = action == bindings::module_state_MODULE_STATE_GOING as kernel::ffi::c_ulong;
    let live = action == bindings::module_state_MODULE_STATE_LIVE as kernel::ffi::c_ulong;
    if coming || going {
        modules::on_module_state(data.cast(), coming);
    }
    let probes = PROBES.load(Ordering::Acquire);
    if (live || going) && !probes.is_null() {
        // SAFETY: For module notifications `data` is the module, live for
        // the call; `probes` is published and outlives this call (see
        // `publish_probes`).
        unsafe {
            let name = CStr::from_char_ptr((*data.cast::<bindings::module>()).name.as_ptr());
            let probes = &*probes;
            if live {
                probes.arm_module(compat::cstr_bytes(name));
            } else {
                probes.disarm_module(compat::cstr_bytes(name));
            }
        }
    }
    bindings::NOTIFY_DONE as kernel::ffi::c_int
}
