// SPDX-License-Identifier: GPL-2.0

//! refledger: ledgers of kernel references, to explain a busy unmount.
//!
//! When `umount` or `zpool export` says "busy" and no process holds the
//! filesystem, some kernel code holds a reference it never gave back.  This
//! module places kprobes on the functions that take and drop such references
//! and shows what it saw under `/sys/kernel/debug/refledger/` (root only):
//!
//! - `probes`: one line per probe: symbol, role, armed or why not, hits.
//! - `superblocks`: one line per superblock: state, `s_active`, mounts.
//! - `leaks`: each flagged superblock with its evidence.
//! - `events`: a ring of recent events, oldest first.
//! - `bdevs`: one line per block device, with its open instances.
//! - `modules`: module refcount gets and puts by call site.
//! - `zfs`: OpenZFS `zfsvfs_hold` calls and their results.
//! - `holders`: write a path, `dev=` or `sb=`; read who holds that
//!   superblock and the balance of its `s_active`.
//! - `control`: `grace_ms=N`, `audit_ms=N`, `modules=...`, `reset`, `audit`.
//!
//! Module parameters (declared in `helpers.c`, because 6.12's `module!` has
//! none, and 7.x's takes integers only):
//!
//! - `extra_probes=sym1,sym2`: also count calls of these functions (at most
//!   eight).  A symbol that does not exist is listed as not armed; a malformed
//!   list fails the load with `EINVAL`.
//!
//! Supported: x86_64, kernels with the 6.12 or the 7.x `kernel` crate (see
//! `compat`).  Probe handlers
//! never sleep or allocate; every table has a fixed capacity and counts what
//! it had to drop (see the README).

// The layers, bottom up; each imports only from those below it.
mod join;
mod tables;
mod wrappers;

use join::{
    audit, bdev_handlers, bdevs_file, captures, control, events_file, holders, leaks,
    ledger::Ledger, modules_file, notifier, sb_handlers, superblocks_file, zfs_file, zfs_handlers,
};
use kernel::{c_str, prelude::*};
use tables::modules;
use wrappers::{bindings, clock, debugfs, probes::ProbeSet};

module! {
    type: RefLedger,
    name: "refledger",
    description: "Ledgers of superblock, block device and module references",
    license: "GPL",
}

static SUPERBLOCKS: superblocks_file::SuperblocksFile = superblocks_file::SuperblocksFile;
static LEAKS: leaks::LeaksFile = leaks::LeaksFile;
static EVENTS: events_file::EventsFile = events_file::EventsFile;
static CONTROL: control::ControlFile = control::ControlFile;
static BDEVS: bdevs_file::BdevsFile = bdevs_file::BdevsFile;
static MODULES: modules_file::ModulesFile = modules_file::ModulesFile;
static ZFS: zfs_file::ZfsFile = zfs_file::ZfsFile;

/// The loaded module.
///
/// Fields drop in declaration order, which is the teardown order: first the
/// debugfs files, so no reader reaches what follows; then the probes, whose
/// disarming waits for running handlers; then the captures, which wait for
/// a capture that a handler asked for; last the ledger, which stops the
/// audit and unpublishes itself.
struct RefLedger {
    _dir: Option<debugfs::Dir>,
    _holders: Pin<KBox<holders::HoldersFile>>,
    _probes: KBox<ProbeSet>,
    _captures: Pin<KBox<captures::Captures>>,
    _ledger: Pin<KBox<Ledger>>,
}

impl Drop for RefLedger {
    fn drop(&mut self) {
        // Readers first, then the audit: both rely on the module notifier to
        // keep a module they look at from being freed, so it goes after
        // them.  The notifier arms and disarms probes, so it goes before the
        // probes do, with the fields.
        self._dir = None;
        self._ledger.stop_audit();
        self._ledger.stop_notifier();
        notifier::publish_probes(None);
        // Before the probe set unregisters the tracepoints.
        modules::stop_counting();
    }
}

/// Prepares the debugfs directory and its files: every allocation, and
/// nothing visible yet (see [`debugfs::Dir`]).
fn make_dir(
    module: &'static ThisModule,
    probes: &ProbeSet,
    holders: &holders::HoldersFile,
) -> Result<debugfs::Dir> {
    let mut dir = debugfs::Dir::new(module)?;
    // SAFETY: `probes` and `holders` are boxed by the caller and outlive
    // the directory (see `RefLedger`); the other objects are statics.
    unsafe {
        dir.add(c_str!("probes"), probes)?;
        dir.add(c_str!("superblocks"), &SUPERBLOCKS)?;
        dir.add(c_str!("leaks"), &LEAKS)?;
        dir.add(c_str!("events"), &EVENTS)?;
        dir.add(c_str!("bdevs"), &BDEVS)?;
        dir.add(c_str!("modules"), &MODULES)?;
        dir.add(c_str!("zfs"), &ZFS)?;
        dir.add_rw(c_str!("control"), &CONTROL)?;
        dir.add_rw(c_str!("holders"), holders)?;
    }
    Ok(dir)
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
        // The handlers' clock, before any handler runs.
        clock::sync();
        let holders = KBox::pin_init(holders::HoldersFile::new(), GFP_KERNEL)?;
        let captures = KBox::pin_init(captures::Captures::new()?, GFP_KERNEL)?;
        captures.as_ref().publish();
        // SAFETY: Process context, at load; it only looks symbols up.
        unsafe { bindings::rl_holders_init() };
        // `ProbeSet::new` validates the parameter before anything is armed or
        // published, so a bad one changes nothing.
        let mut probes = KBox::new(
            ProbeSet::new(
                &[
                    &sb_handlers::SPECS,
                    &bdev_handlers::SPECS,
                    &modules::SPECS,
                    &zfs_handlers::SPECS,
                ],
                extra,
            )?,
            GFP_KERNEL,
        )?;

        let ledger = KBox::pin_init(Ledger::new(Some(audit::audit_work))?, GFP_KERNEL)?;
        ledger.as_ref().publish();
        // If this fails, counting has not started and nothing is armed:
        // what was registered is unregistered when dropped (by the probe
        // set, or inside `add_tracepoints` for those not yet added).
        let complete = probes.add_tracepoints(modules::tracepoints(), modules::TRACEPOINT_ROLE)?;
        modules::start_counting(complete);
        // Published before the notifier starts, so a module that loads from
        // now on gets its probes armed; then everything present is armed.
        notifier::publish_probes(Some(&probes));
        audit::start(&ledger);
        probes.arm_all();
        audit::armed(&ledger, &probes);

        let dir = match make_dir(module, &probes, &holders).and_then(|mut dir| {
            // The last step that can fail, and it fails only before any
            // file exists: after it, init must succeed.
            dir.publish(c_str!("refledger"))?;
            Ok(dir)
        }) {
            Ok(dir) => dir,
            Err(e) => {
                // Tear down in order: nothing may reach the ledger once it
                // is freed, so the probes go first.
                ledger.stop_audit();
                ledger.stop_notifier();
                notifier::publish_probes(None);
                modules::stop_counting();
                drop(probes);
                drop(captures);
                drop(ledger);
                return Err(e);
            }
        };

        pr_info!("loaded\n");
        Ok(Self {
            _dir: Some(dir),
            _holders: holders,
            _captures: captures,
            _probes: probes,
            _ledger: ledger,
        })
    }
}
