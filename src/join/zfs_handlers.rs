// SPDX-License-Identifier: GPL-2.0

//! The OpenZFS ledger's probe handlers, all in `zfs.ko`: `zfsvfs_hold`,
//! `zfs_vfs_ref` and `zfs_vfs_rele` inside it, and the pool export ioctl.
//!
//! A hold that returns `EBUSY` with more references taken than released is
//! #18309's signature: it is flagged at once, with the dataset, the caller's
//! stack and the superblock (named through `zfsvfs_t.z_sb`, checked against
//! the superblock table; see `tables::zfs`).

use crate::{
    join::ledger,
    tables::zfs::{
        current_task, slot_of, Hold, HoldRecord, COUNT_EBUSY, COUNT_OK, COUNT_OTHER, COUNT_RELE,
        HOLDS, HOLDS_DROPPED, LAYOUT_REJECTED, MAX_FLAGGED, RECENT, ZFS_EBUSY,
    },
    wrappers::{
        evidence::{Evidence, Name},
        kprobe::{entry_handler, return_handler, ProbeData, Regs},
        probes::{Candidate, Spec},
    },
};
use core::sync::atomic::Ordering;
use kernel::c_str;

/// `z_sb` of a `zfsvfs_t`, if it names a superblock the ledger knows as
/// a ZFS one.
fn z_sb(zfsvfs: usize) -> Option<usize> {
    if zfsvfs == 0 {
        return None;
    }
    // SAFETY: `zfsvfs` points to a live `zfsvfs_t` (the caller's), whose
    // second pointer-sized field is `z_sb` in OpenZFS 2.x; the value is only
    // used after the check below.
    let sb = unsafe { core::ptr::read_volatile((zfsvfs as *const usize).add(1)) };
    let l = ledger::get()?;
    if sb != 0
        && l.inner
            .try_lock()
            .is_some_and(|i| i.sbs.is_fstype(sb, b"zfs"))
    {
        Some(sb)
    } else {
        LAYOUT_REJECTED.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn hold_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // zfsvfs_hold(name, tag, zfvp, writer)
    let task = current_task();
    let Some(h) = HOLDS.iter().find(|h| {
        h.task
            .compare_exchange(0, task, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }) else {
        HOLDS_DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    h.refs.store(0, Ordering::Relaxed);
    h.sb.store(0, Ordering::Relaxed);
    data[0] = regs.arg(0);
    data[1] = regs.entry_return_address();
    data[2] = core::ptr::from_ref(h) as usize;
    true
}

fn hold_exit(regs: &Regs, data: &ProbeData) {
    // SAFETY: `data[2]` is the `HOLDS` slot the entry handler claimed.
    let h = unsafe { &*(data[2] as *const Hold) };
    let result = regs.return_int() as usize;
    let kept = h.refs.load(Ordering::Relaxed);
    let sb = h.sb.load(Ordering::Relaxed);
    h.task.store(0, Ordering::Release);
    match result {
        0 => &COUNT_OK,
        ZFS_EBUSY => &COUNT_EBUSY,
        _ => &COUNT_OTHER,
    }
    .fetch_add(1, Ordering::Relaxed);
    let Some(l) = ledger::get() else { return };
    // SAFETY: `name` is the dataset name the caller passed, a kernel string
    // valid during the call (the ioctl's `zc_name`, NUL-terminated).
    let dataset = unsafe { Name::from_c(data[0] as *const _) };
    let flag = result == ZFS_EBUSY && kept > 0;
    let rec = HoldRecord {
        dataset,
        result: result as i32,
        kept,
        sb,
        sb_gen: 0,
        // Only a flagged hold's stack is ever shown (`leaks`); the `zfs`
        // file shows the caller of the others.  Most ZFS ioctls take a
        // hold, and a stack for each cost an unwind per ioctl.
        ev: Evidence::capture_if(regs, data[1], flag),
    };
    let Some(mut guard) = l.inner.try_lock() else {
        return;
    };
    let inner = &mut *guard;
    let mut rec = rec;
    rec.sb_gen = inner.sbs.gen(sb);
    let z = &mut inner.zfs;
    let i = (z.nrecent % RECENT as u64) as usize;
    z.recent[i] = rec;
    z.nrecent += 1;
    if flag {
        let i = (z.nflagged % MAX_FLAGGED as u64) as usize;
        z.flagged[i] = rec;
        z.nflagged += 1;
        if sb != 0 {
            if let Some(e) = inner.sbs.note_hold_leak(sb, rec.ev.time, &rec.ev) {
                inner.events.push(e);
            }
        }
    }
}

fn ref_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // zfs_vfs_ref(zfvp): only calls inside a tracked zfsvfs_hold matter.
    let Some(h) = slot_of(current_task()) else {
        return false;
    };
    let zfvp = regs.arg(0) as *const usize;
    data[0] = if zfvp.is_null() {
        0
    } else {
        // SAFETY: `zfvp` is the caller's `zfsvfs_t **`, set before the call.
        unsafe { *zfvp }
    };
    data[1] = core::ptr::from_ref(h) as usize;
    true
}

fn ref_exit(regs: &Regs, data: &ProbeData) {
    if regs.return_int() != 0 {
        return;
    }
    // SAFETY: The slot is still this task's: the hold has not returned.
    let h = unsafe { &*(data[1] as *const Hold) };
    h.refs.fetch_add(1, Ordering::Relaxed);
    if let Some(sb) = z_sb(data[0]) {
        h.sb.store(sb, Ordering::Relaxed);
    }
}

fn on_rele(_regs: &Regs) {
    COUNT_RELE.fetch_add(1, Ordering::Relaxed);
    if let Some(h) = slot_of(current_task()) {
        h.refs.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `spa_export` returned: on `EBUSY`, snapshot the ZFS superblocks.
fn export_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    data[0] = regs.arg(0);
    data[1] = regs.entry_return_address();
    ledger::get().is_some()
}

fn export_exit(regs: &Regs, data: &ProbeData) {
    if regs.return_int() as usize != ZFS_EBUSY {
        return;
    }
    let Some(l) = ledger::get() else { return };
    // SAFETY: The pool name the caller passed, valid during the call.
    let _pool: Name<48> = unsafe { Name::from_c(data[0] as *const _) };
    let ev = Evidence::capture_regs(regs, data[1]);
    let now = ev.time;
    let Some(mut guard) = l.inner.try_lock() else {
        return;
    };
    guard.zfs.export_busy = Some((now, ev));
}

/// The probes of this ledger, all in `zfs.ko`.
pub(crate) static SPECS: [Spec; 4] = [
    Spec {
        role: "zfs_hold",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfsvfs_hold"),
            handler: return_handler!(hold_entry, hold_exit),
        }],
    },
    Spec {
        role: "zfs_vfs_ref",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfs_vfs_ref"),
            handler: return_handler!(ref_entry, ref_exit),
        }],
    },
    Spec {
        role: "zfs_vfs_rele",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("zfs_vfs_rele"),
            handler: entry_handler!(on_rele),
        }],
    },
    Spec {
        role: "zfs_export",
        module: Some("zfs"),
        candidates: &[Candidate {
            symbol: c_str!("spa_export"),
            handler: return_handler!(export_entry, export_exit),
        }],
    },
];
