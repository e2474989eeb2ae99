// SPDX-License-Identifier: GPL-2.0

//! refledger: ledgers of kernel references, to explain a busy unmount.
//!
//! When `umount` or `zpool export` says "busy" and no process holds the
//! filesystem, some kernel code holds a reference it never gave back.  This
//! module places kprobes on the functions that take and drop such references
//! and shows what it saw under `/sys/kernel/debug/refledger/` (root only).
//!
//! Files:
//!
//! - `probes`: one line per probe: symbol, role, armed or why not, hits,
//!   missed hits.
//!
//! Module parameters (declared in `helpers.c`, because 6.12's `module!` has
//! none):
//!
//! - `extra_probes=sym1,sym2`: also count calls of these functions (at most
//!   eight).  A symbol that does not exist is listed as not armed; a malformed
//!   list fails the load with `EINVAL`.

mod bindings;
mod debugfs;
mod kprobe;
mod probes;

use kernel::{c_str, prelude::*};
use probes::{ProbeSet, Spec};

module! {
    type: RefLedger,
    name: "refledger",
    author: "refledger developers",
    description: "Ledgers of superblock, block device and module references",
    license: "GPL",
}

fn on_deactivate_super(_regs: &kprobe::Regs) {}

/// The probes refledger asks for.
static SPECS: [Spec; 1] = [Spec {
    role: "sb_release",
    symbols: &[c_str!("deactivate_super")],
    handler: kprobe::Handler::Entry(on_deactivate_super),
}];

/// The loaded module.
struct RefLedger {
    // Fields drop in order: the debugfs files go first, so no reader can reach
    // the state below while it is torn down.
    _dir: debugfs::Dir,
    _probes: KBox<ProbeSet>,
}

impl kernel::Module for RefLedger {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // SAFETY: The parameter is a NUL-terminated string owned by the module
        // loader, or NULL; it is read-only (mode 0400) and lives as long as the
        // module.
        let extra = unsafe {
            let p = bindings::rl_param_extra_probes();
            (!p.is_null()).then(|| CStr::from_char_ptr(p))
        };
        // `ProbeSet::new` validates the parameter before anything is armed, so
        // a bad one changes nothing.
        let probes = KBox::new(ProbeSet::new(&SPECS, extra)?, GFP_KERNEL)?;
        probes.arm_all();

        let mut dir = debugfs::Dir::new(c_str!("refledger"), module)?;
        // SAFETY: `probes` is boxed and, by field order, dropped after `dir`.
        unsafe { dir.add(c_str!("probes"), &*probes)? };

        pr_info!("loaded\n");
        Ok(Self {
            _dir: dir,
            _probes: probes,
        })
    }
}
