// SPDX-License-Identifier: GPL-2.0

//! The superblock ledger's probe handlers.
//!
//! `vfs_create_mount` and `clone_mnt` (mounts created), `path_umount`
//! (umount(2), and a capture of the holders when it is refused),
//! `deactivate_super` (releases, with call site and stack),
//! `deactivate_locked_super` (the final release) and
//! `generic_shutdown_super`, which also tells the block device table that
//! the superblock holding a device shut down.
//!
//! They run in the probed function's context, which on an int3 kprobe is NMI
//! context: no sleeping, no allocation, no printk; they take the ledger's
//! lock with `try_lock` only (see `sync`), briefly.

use crate::{
    join::{
        captures,
        ledger::{self, note_transition, with_record, Inner, Ledger},
    },
    tables::{events::Kind, superblocks::Snapshot},
    wrappers::{
        bindings,
        evidence::{in_mount_syscall, is_err_or_null, CallSites, Evidence, SiteClass},
        kprobe::{entry_handler, return_handler, ProbeData, Regs},
        probes::{Candidate, Spec},
    },
};
use kernel::{c_str, prelude::*};

/// The probes this ledger needs.
pub(crate) static SPECS: [Spec; 6] = [
    Spec {
        role: "sb_mount",
        module: None,
        candidates: &[
            // Since 6.18 every new struct mount passes through `setup_mnt`,
            // and GCC inlines `vfs_create_mount` into `fc_mount`, the way
            // mount(2) now takes: a probe on it would arm and never fire.
            Candidate {
                symbol: c_str!("setup_mnt"),
                handler: return_handler!(root_sb_entry, setup_mnt_exit),
            },
            // Up to 6.17, no `setup_mnt`: mount(2), fsmount(2) and in-kernel
            // mounts all call `vfs_create_mount`.
            Candidate {
                symbol: c_str!("vfs_create_mount"),
                handler: return_handler!(mount_entry, mount_exit),
            },
        ],
    },
    Spec {
        role: "sb_clone",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("clone_mnt"),
            handler: return_handler!(root_sb_entry, clone_exit),
        }],
    },
    Spec {
        role: "sb_umount",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("path_umount"),
            handler: return_handler!(umount_entry, umount_exit),
        }],
    },
    Spec {
        role: "sb_release",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("deactivate_super"),
            handler: entry_handler!(on_deactivate_super),
        }],
    },
    Spec {
        role: "sb_final_release",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("deactivate_locked_super"),
            handler: entry_handler!(on_deactivate_locked_super),
        }],
    },
    Spec {
        role: "sb_shutdown",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("generic_shutdown_super"),
            handler: entry_handler!(on_generic_shutdown_super),
        }],
    },
];

// Probe handlers.  They run in the probed function's context, which on an
// int3 kprobe is NMI context: no sleeping, no allocation, no printk; they
// take the ledger's lock with `try_lock` only (see `sync`), briefly.

fn mount_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    data[0] = regs.entry_return_address();
    ledger::get().is_some()
}

fn mount_exit(regs: &Regs, data: &ProbeData) {
    let mnt = regs.return_value();
    let Some(l) = ledger::get() else { return };
    if is_err_or_null(mnt) {
        return;
    }
    // SAFETY: `vfs_create_mount` returned a new vfsmount, which the caller
    // owns and which holds an `s_active` reference to its superblock.
    let sb = unsafe { (*(mnt as *const bindings::vfsmount)).mnt_sb } as usize;
    // mount(2) and fsmount(2) always come the same way from the system call,
    // so their caller and task say all; an in-kernel mount (`fc_mount`, for
    // `kern_mount`, automounts, stacked filesystems) is worth its stack.
    let deep = !MOUNT_SYSCALL.is(
        data[0],
        &[
            b"do_new_mount",
            b"do_new_mount_fc",
            b"__do_sys_fsmount",
            b"__x64_sys_fsmount",
        ],
    );
    acquired(
        l,
        sb,
        Kind::Mount,
        Evidence::capture_if(regs, data[0], deep),
    );
}

static MOUNT_SYSCALL: SiteClass = SiteClass::new();

fn setup_mnt_exit(regs: &Regs, data: &ProbeData) {
    let Some(l) = ledger::get() else { return };
    let caller = data[1];
    if data[0] == 0 || SETUP_CLONE.is(caller, &[b"clone_mnt"]) {
        // A clone: the `sb_clone` probe on `clone_mnt` records it.
        return;
    }
    // `clone_mnt` inlined into its one exported user (BSD process
    // accounting) is still a clone.
    let kind = if SETUP_CLONE_INLINED.is(caller, &[b"mnt_clone_internal"]) {
        Kind::Clone
    } else {
        Kind::Mount
    };
    // fsmount(2) comes the same way every time.  mount(2) and in-kernel
    // mounts share `fc_mount`; mount(2)'s own comes the same way too, and
    // the system call number says it is one, for a fraction of what a stack
    // costs (on a tmpfs mount and unmount the unwinder was a fifth of all
    // refledger spent).  An in-kernel mount made inside mount(2) (btrfs
    // mounts a subvolume's tree that way) is kept shallow with it: caller
    // and task still say what it was, and it is dropped within the call.
    let ev = if FSMOUNT.is(caller, &[b"__do_sys_fsmount", b"__x64_sys_fsmount"]) {
        Evidence::capture_shallow(caller)
    } else if in_mount_syscall() {
        Evidence::capture_in_mount(caller)
    } else {
        Evidence::capture_regs(regs, caller)
    };
    // `setup_mnt` took an `s_active` reference for the new mount, which its
    // caller owns, so the superblock the entry handler saw is still live.
    acquired(l, data[0], kind, ev);
}

static SETUP_CLONE: SiteClass = SiteClass::new();
static SETUP_CLONE_INLINED: SiteClass = SiteClass::new();
static FSMOUNT: SiteClass = SiteClass::new();

/// The entry of `setup_mnt(m, root)` and `clone_mnt(old, root, flag)`: the
/// new mount is of `root->d_sb` (`data[0]`), made for the caller (`data[1]`).
fn root_sb_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    let root = regs.arg(1) as *const bindings::dentry;
    if root.is_null() || ledger::get().is_none() {
        return false;
    }
    // SAFETY: The caller of either function holds a reference to `root`.
    data[0] = unsafe { (*root).d_sb } as usize;
    data[1] = regs.entry_return_address();
    true
}

fn clone_exit(regs: &Regs, data: &ProbeData) {
    let Some(l) = ledger::get() else { return };
    if is_err_or_null(regs.return_value()) || data[0] == 0 {
        return;
    }
    // The new mount holds an `s_active` reference, so the superblock the
    // entry handler saw is still live.
    acquired(
        l,
        data[0],
        Kind::Clone,
        Evidence::capture_regs(regs, data[1]),
    );
}

/// A struct mount of `sb` was created, as `ev` shows.
fn acquired(l: &Ledger, sb: usize, kind: Kind, ev: Evidence) {
    // SAFETY: The new mount holds a reference to `sb`.
    let snap = unsafe { Snapshot::read(sb) };
    let update = |inner: &mut Inner, i: usize, now: u64| {
        let id = inner.sbs.push_site(kind, snap.s_active, &ev);
        let grace = l.grace_ns();
        let r = &mut inner.sbs.recs[i];
        // A record made just now counted this mount already.
        if r.first_seen != now {
            r.mounts = r.mounts.saturating_add(1);
        }
        r.apply(&snap);
        r.acquires.push(id);
        r.n_acquires = r.n_acquires.saturating_add(1);
        let t = inner.sbs.evaluate(i, now, grace);
        inner.sbs.recs[i].push_event(&mut inner.events, kind, now, Some(&ev), snap.s_active);
        if let Some(t) = t {
            note_transition(&inner.sbs.recs[i], t, now, &mut inner.events);
        }
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    // The mount event announces a new record; no `seen` event.
    // SAFETY: The new mount holds a reference to `sb`.
    unsafe { with_record(&mut inner, sb, &snap, true, false, true, ev.time, update) };
}

fn umount_entry(regs: &Regs, data: &mut ProbeData) -> bool {
    // path_umount(path, flags): the mount is `path->mnt`.
    let path = regs.arg(0) as *const bindings::path;
    if path.is_null() || ledger::get().is_none() {
        return false;
    }
    // SAFETY: At entry the caller's path holds the mount, and so its
    // superblock.  `path_umount` gives both up itself (`mntput_no_expire`)
    // before it returns, so the superblock is only a key after this: the
    // return handler never reads it.
    data[0] = unsafe {
        let mnt = (*path).mnt;
        if mnt.is_null() {
            return false;
        }
        (*mnt).mnt_sb as usize
    };
    data[1] = regs.entry_return_address();
    true
}

fn umount_exit(regs: &Regs, data: &ProbeData) {
    let Some(l) = ledger::get() else { return };
    // path_umount() returns int.
    let ret = regs.return_int();
    if ret == EBUSY.to_errno() {
        // Refused because the mount is in use: remember it, so `leaks` can
        // tell a real holder from a leak.
        let ev = Evidence::capture_regs(regs, data[1]);
        let now = ev.time;
        let Some(mut guard) = l.inner.try_lock() else {
            return;
        };
        let inner = &mut *guard;
        if let Some(e) = inner.sbs.note_busy(data[0], now, &ev, Kind::UmountBusy) {
            inner.events.push(e);
        }
        drop(guard);
        // Who holds it, from process context soon: they may be gone by the
        // time anyone reads `leaks`.
        captures::capture_later(data[0]);
        return;
    }
    if ret != 0 {
        return;
    }
    let ev = Evidence::capture_shallow(data[1]);
    let now = ev.time;
    // The superblock may be on its way out now, so it is not read: only the
    // record is updated, if there is one.
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let Some(i) = inner.sbs.find(data[0]) else {
        return;
    };
    let inner = &mut *inner;
    let r = &mut inner.sbs.recs[i];
    r.unmounted = r.unmounted.saturating_add(1);
    r.last_umount = now;
    r.push_event(&mut inner.events, Kind::Umount, now, Some(&ev), r.s_active);
}

static MOUNT_RELEASE: SiteClass = SiteClass::new();
static CONTEXT_RELEASE: SiteClass = SiteClass::new();
/// The sites `deactivate_super` returns to (see `on_deactivate_locked_super`).
static RELEASE_CALLERS: CallSites = CallSites::new();
static IN_DEACTIVATE_SUPER: SiteClass = SiteClass::new();

/// Whether a call to `deactivate_super` from `caller` drops a struct mount's
/// reference: `cleanup_mnt` does, wherever the compiler inlined it.
fn is_mount_release(caller: usize) -> bool {
    MOUNT_RELEASE.is(
        caller,
        &[
            b"cleanup_mnt",
            b"__cleanup_mnt",
            b"delayed_mntput",
            b"mntput_no_expire",
            b"mntput_no_expire_slowpath",
        ],
    )
}

fn on_deactivate_super(regs: &Regs) {
    let Some(l) = ledger::get() else { return };
    let sb = regs.arg(0);
    if sb == 0 {
        return;
    }
    let caller = regs.entry_return_address();
    RELEASE_CALLERS.add(caller);
    let mount_release = is_mount_release(caller);
    // A mount's release always comes the same way (task work or a kworker
    // running `cleanup_mnt`), and so does the one every mount(2) makes when
    // it drops its filesystem context (`put_fs_context`): the caller says
    // all.  The stack is worth its cost only for other releases, such as a
    // filesystem's own.
    let routine = mount_release || CONTEXT_RELEASE.is(caller, &[b"put_fs_context"]);
    let ev = Evidence::capture_if(regs, caller, !routine);
    // SAFETY: The caller of `deactivate_super` holds the reference it drops.
    let snap = unsafe { Snapshot::read(sb) };
    let update = |inner: &mut Inner, i: usize, now: u64| {
        let id = inner.sbs.push_site(Kind::Release, snap.s_active, &ev);
        let grace = l.grace_ns();
        let r = &mut inner.sbs.recs[i];
        if mount_release {
            r.mounts = (r.mounts - 1).max(0);
            r.unmounted = (r.unmounted - 1).max(0);
        }
        r.apply(&snap);
        // The reference is dropped right after this handler returns.
        r.s_active = snap.s_active - 1;
        r.releases.push(id);
        r.n_releases = r.n_releases.saturating_add(1);
        let t = inner.sbs.evaluate(i, now, grace);
        inner.sbs.recs[i].push_event(
            &mut inner.events,
            Kind::Release,
            now,
            Some(&ev),
            snap.s_active,
        );
        if let Some(t) = t {
            note_transition(&inner.sbs.recs[i], t, now, &mut inner.events);
        }
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    // The caller holds a reference, so the superblock is alive: a record
    // shut down at its address is an earlier superblock's.
    // SAFETY: The caller of `deactivate_super` holds the reference it drops.
    unsafe { with_record(&mut inner, sb, &snap, true, false, false, ev.time, update) };
}

/// For a kprobe on a function whose first argument is a superblock: the
/// ledger and the superblock, if there are both.  The handler then takes
/// shallow evidence (no stack): it goes only into events, which show the
/// caller, and these calls run on every unmount, where a stack would be the
/// dearest part.  It is taken by the handler itself, not returned from here:
/// returned in a tuple, the 88 bytes were copied once more on every call.
fn sb_call(regs: &Regs) -> Option<(&'static Ledger, usize)> {
    let l = ledger::get()?;
    let sb = regs.arg(0);
    (sb != 0).then_some((l, sb))
}

/// `deactivate_locked_super(sb)`: drops a reference with `s_umount` held.
/// The last one (`s_active` 1) shuts the superblock down; others come from
/// `thaw_super` (the freeze's reference) or a mount that found an existing
/// superblock (`get_tree_bdev`, `vfs_get_super`).
///
/// `deactivate_super` calls it for the last reference (`s_active` 1), and
/// its release's event (with `s_active` 1) and the shutdown's that follows
/// say all that a `final_release` event would, so only other callers' calls
/// are kept as events (and this one costs a mount and unmount no lock, clock
/// or event).  Both kernels we build for make that call a tail call (a
/// `jmp`): it returns where the call to `deactivate_super` would, to a call
/// site that `on_deactivate_super` added to [`RELEASE_CALLERS`].  A kernel
/// that keeps it a call (frame pointers) returns into `deactivate_super`
/// itself.  A site the set forgot only costs the event; a call with more
/// than one reference left (a thaw's) is always kept.
fn on_deactivate_locked_super(regs: &Regs) {
    let Some((l, sb)) = sb_call(regs) else {
        return;
    };
    let caller = regs.entry_return_address();
    // SAFETY: The caller holds `s_umount` and the reference it drops; the
    // count is an atomic_t, read once.
    let s_active = unsafe {
        core::ptr::read_volatile(
            &raw const (*(sb as *const bindings::super_block)).s_active.counter,
        )
    };
    if s_active <= 1
        && (RELEASE_CALLERS.has(caller) || IN_DEACTIVATE_SUPER.is(caller, &[b"deactivate_super"]))
    {
        return;
    }
    let ev = Evidence::capture_shallow(caller);
    let now = ev.time;
    let kind = if s_active <= 1 {
        Kind::FinalRelease
    } else {
        Kind::LockedRelease
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let Some(i) = inner.sbs.find(sb) else { return };
    let inner = &mut *inner;
    inner.sbs.recs[i].push_event(&mut inner.events, kind, now, Some(&ev), s_active);
}

fn on_generic_shutdown_super(regs: &Regs) {
    let Some((l, sb)) = sb_call(regs) else {
        return;
    };
    let ev = Evidence::capture_shallow(regs.entry_return_address());
    let now = ev.time;
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let Some(i) = inner.sbs.find(sb) else { return };
    let inner = &mut *inner;
    inner.sbs.shut_down(i, now);
    let r = &mut inner.sbs.recs[i];
    let resolved = r.resolve(now);
    r.push_event(&mut inner.events, Kind::Shutdown, now, Some(&ev), 0);
    if resolved {
        r.push_event(&mut inner.events, Kind::Resolved, now, Some(&ev), 0);
    }
    l.bdevs.holder_shut_down(&inner.bdevs, sb, now);
}
