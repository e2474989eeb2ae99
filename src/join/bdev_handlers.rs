// SPDX-License-Identifier: GPL-2.0

//! The block device ledger's probe handlers: `bdev_open` (with its holder:
//! a superblock, a symbol or another object) and `bdev_release`.
//!
//! Older kernels' names (`bdev_open_by_dev`, `blkdev_get_by_dev`,
//! `blkdev_put`) are listed as candidates so `probes` says which exist, but
//! only the 6.9+ argument layouts are decoded.

use crate::{
    join::ledger::{self, Ledger},
    tables::bdevs::{classify, BdevInfo, DevSlot, Holder},
    wrappers::{
        bindings,
        clock::now_ns,
        evidence::{is_err_or_null, Evidence, SiteClass},
        kprobe::{entry_handler, return_handler, ProbeData, Regs},
        probes::{Candidate, Spec},
    },
};
use kernel::c_str;

const H_NONE: usize = 0;
const H_SB: usize = 1;
const H_SYM: usize = 2;
const H_OBJ: usize = 3;

fn open_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // bdev_open(bdev, mode, holder, hops, bdev_file)
    data[0] = regs.arg(0);
    let (kind, addr) = match classify(regs.arg(2), regs.arg(3)) {
        Holder::None => (H_NONE, 0),
        Holder::Superblock(a) => (H_SB, a),
        Holder::Symbol(a) => (H_SYM, a),
        Holder::Object(a) => (H_OBJ, a),
    };
    data[1] = addr;
    data[2] = kind;
    data[3] = regs.arg(4);
    data[4] = regs.entry_return_address();
    ledger::get().is_some() && data[0] != 0
}

fn open_exit(regs: &Regs, data: &ProbeData) {
    let Some(l) = ledger::get() else { return };
    if regs.return_int() != 0 {
        return;
    }
    // The caller of `bdev_open` is `bdev_file_open_by_dev` (an in-kernel
    // open: the stack shows who asked) or `blkdev_open` (open(2): the stack
    // is always the system call's, so only the task is kept).  A stack is
    // taken now, before the lock and the slot's write (unwinding is the
    // dearest part of a handler, and others wait for both), and copied in;
    // the task alone is written into the open's slot in place.
    let caller = data[4];
    let stack =
        (!USER_OPEN.is(caller, &[b"blkdev_open"])).then(|| Evidence::capture_regs(regs, caller));
    let fill = |ev: &mut Evidence| match &stack {
        Some(s) => *ev = *s,
        None => ev.fill_shallow(caller),
    };
    // SAFETY: `bdev_open` succeeded: the device is open for this file.
    let info = unsafe { BdevInfo::read(data[0] as *mut _) };
    let holder = match data[2] {
        H_SB => Holder::Superblock(data[1]),
        H_SYM => Holder::Symbol(data[1]),
        H_OBJ => Holder::Object(data[1]),
        _ => Holder::None,
    };
    let t = &l.bdevs;
    // An open held by a superblock is recorded and marked for the
    // superblock's shutdown with the lock held, as every write of the marks
    // is (see `Table::holder_shut_down`).  If the lock is given up (and
    // counted), it is recorded unmarked, so that its close is still
    // matched, though its superblock's shutdown will not see it; a device
    // not found without the lock is then not waited for twice.  Other opens
    // (every open(2) of a block device: the hot path) are recorded without
    // the lock, which only a device's first open takes.
    let by_sb = data[2] == H_SB;
    let mut guard = if by_sb { l.inner.try_lock() } else { None };
    let d = match guard.as_deref_mut() {
        Some(inner) => t.dev(&info).or_else(|| t.dev_slow(&mut inner.bdevs, &info)),
        None if by_sb => t.dev(&info),
        None => device(l, &info),
    };
    if let Some(d) = d {
        d.opened(info.openers);
    }
    t.record_open(
        guard.as_deref().map(|inner| &inner.bdevs),
        data[3],
        info.dev,
        holder,
        fill,
    );
}

fn on_release(regs: &Regs) {
    let Some(l) = ledger::get() else { return };
    let file = regs.arg(0) as *mut bindings::file;
    if file.is_null() {
        return;
    }
    // SAFETY: `file` is the block device file being released.
    let private = unsafe { (*file).private_data } as usize;
    // An open that failed is released too, with an error pointer as private
    // data: it was never counted as an open, so its release is not a close.
    if private != 0 && is_err_or_null(private) {
        return;
    }
    // SAFETY: `bdev_release` is given a block device file being released,
    // which still refers to its open device.
    let bdev = unsafe { bindings::file_bdev(file) };
    // SAFETY: As above.
    let info = unsafe { BdevInfo::read(bdev) };
    let now = now_ns();
    let matched = l.bdevs.record_close(file as usize);
    // This close drops one opener after the handler returns.
    let openers = info.openers - 1;
    if let Some(d) = device(l, &info) {
        d.closed(matched, openers, now);
    }
}

/// The record of `info`'s device: found without the lock, else found or
/// made with it, if a handler can take it (a handler that holds it calls
/// `dev_slow` itself).  Inlined: it is on the path of every open(2) and
/// close of a block device.
#[inline(always)]
fn device<'a>(l: &'a Ledger, info: &BdevInfo) -> Option<&'a DevSlot> {
    l.bdevs
        .dev(info)
        .or_else(|| l.bdevs.dev_slow(&mut l.inner.try_lock()?.bdevs, info))
}

static USER_OPEN: SiteClass = SiteClass::new();

fn count_only(_regs: &Regs) {}

/// The probes of this ledger.
pub(crate) static SPECS: [Spec; 2] = [
    Spec {
        role: "bdev_open",
        module: None,
        candidates: &[
            Candidate {
                symbol: c_str!("bdev_open"),
                handler: return_handler!(open_entry, open_exit),
            },
            Candidate {
                symbol: c_str!("bdev_open_by_dev"),
                handler: entry_handler!(count_only),
            },
            Candidate {
                symbol: c_str!("blkdev_get_by_dev"),
                handler: entry_handler!(count_only),
            },
        ],
    },
    Spec {
        role: "bdev_close",
        module: None,
        candidates: &[
            Candidate {
                symbol: c_str!("bdev_release"),
                handler: entry_handler!(on_release),
            },
            Candidate {
                symbol: c_str!("blkdev_put"),
                handler: entry_handler!(count_only),
            },
        ],
    },
];
