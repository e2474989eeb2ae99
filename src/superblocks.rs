// SPDX-License-Identifier: GPL-2.0

//! The superblock ledger: every superblock from first sight to free, the
//! references seen taken and dropped, and the leak flag.
//!
//! Most `s_active` increments are open-coded atomics no probe can see
//! (`grab_super`, OpenZFS's `zfs_vfs_ref`), so the ledger does not count
//! references; it watches the one thing a leak cannot hide.  Every struct
//! mount of a superblock holds one `s_active` reference and sits on
//! `sb->s_mounts`.  A superblock with an empty `s_mounts` and `s_active`
//! still above zero is held by something that is not a mount.  Unmounting
//! normally drops the last reference within milliseconds; if that state
//! lasts longer than the grace period, the superblock is flagged as leaked,
//! whatever took the reference.
//!
//! States: `live` (mounted), `pending` (every mount was unmounted but a
//! struct mount is still referenced: a lazy unmount with a file open, or a
//! delayed `mntput`), `detached` (no mounts, `s_active` up, within the grace
//! period), `leaked`, `dying` (`s_active` reached 0), `shutdown`
//! (`generic_shutdown_super` ran), `freed` (gone from the superblock list).
//!
//! Probes: `vfs_create_mount` and `clone_mnt` (mounts created),
//! `path_umount` (umount(2)), `deactivate_super` (releases, with call site
//! and stack), `deactivate_locked_super` (the final release) and
//! `generic_shutdown_super`.  An audit ([`audit`]) walks all superblocks with
//! `iterate_supers` periodically and on every read of the files, and
//! reconciles the ledger with each superblock's real `s_active` and
//! `s_mounts`.

use crate::{
    bdevs, bindings,
    debugfs::{seq_print, Line, SeqFile, Show},
    events::{self, Event, Kind},
    evidence::{is_err_or_null, now_ns, Comm, DevT, Evidence, Name, Secs, SiteClass},
    kprobe::{Handler, ProbeData, Regs},
    ledger::{self, Inner, Ledger},
    probes::{Candidate, Spec},
};
use core::ffi::c_void;
use kernel::{c_str, prelude::*};

/// The most superblocks tracked at once.
pub(crate) const MAX_SBS: usize = 12288;
/// Slots of the pointer index: a power of two, at most half full.
const INDEX_SIZE: usize = 32768;
/// Release and acquisition evidence kept per superblock (the most recent).
pub(crate) const SITES_PER_SB: usize = 4;
/// Evidence records shared by all superblocks.
pub(crate) const MAX_SITES: usize = 4096;
/// Freed superblocks kept for display, oldest forgotten first.
pub(crate) const KEEP_FREED: usize = 256;
/// Freed superblocks that had been flagged, kept as `resolved`.
pub(crate) const KEEP_RESOLVED: usize = 256;

const EMPTY: u32 = 0;

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
                handler: Handler::Return {
                    entry: root_sb_entry,
                    exit: setup_mnt_exit,
                },
            },
            // Up to 6.17, no `setup_mnt`: mount(2), fsmount(2) and in-kernel
            // mounts all call `vfs_create_mount`.
            Candidate {
                symbol: c_str!("vfs_create_mount"),
                handler: Handler::Return {
                    entry: mount_entry,
                    exit: mount_exit,
                },
            },
        ],
    },
    Spec {
        role: "sb_clone",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("clone_mnt"),
            handler: Handler::Return {
                entry: root_sb_entry,
                exit: clone_exit,
            },
        }],
    },
    Spec {
        role: "sb_umount",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("path_umount"),
            handler: Handler::Return {
                entry: umount_entry,
                exit: umount_exit,
            },
        }],
    },
    Spec {
        role: "sb_release",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("deactivate_super"),
            handler: Handler::Entry(on_deactivate_super),
        }],
    },
    Spec {
        role: "sb_final_release",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("deactivate_locked_super"),
            handler: Handler::Entry(on_deactivate_locked_super),
        }],
    },
    Spec {
        role: "sb_shutdown",
        module: None,
        candidates: &[Candidate {
            symbol: c_str!("generic_shutdown_super"),
            handler: Handler::Entry(on_generic_shutdown_super),
        }],
    },
];

/// Where a superblock is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum State {
    /// Mounted somewhere.
    #[default]
    Live,
    /// Listed but not born: its filesystem is still filling it in
    /// (`fill_super`), or failed to and is being torn down.
    Mounting,
    /// No mounts, `s_active` held by a freeze (`fsfreeze`, `FIFREEZE`):
    /// a real holder, never flagged.
    Frozen,
    /// Unmounted, but a struct mount is still referenced.
    Pending,
    /// No mounts, `s_active` up, within the grace period.
    Detached,
    /// No mounts, `s_active` up, past the grace period, and no holder
    /// found for it.
    Leaked,
    /// No mounts, `s_active` up, past the grace period, and every
    /// reference held by a holder the audit found (an `fsopen(2)` context
    /// that made it and never mounted it): a real holder, never flagged.
    Held,
    /// `s_active` reached zero; being shut down.
    Dying,
    /// `generic_shutdown_super` ran.
    ShutDown,
    /// Gone from the superblock list.
    Freed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Mounting => "mounting",
            State::Frozen => "frozen",
            State::Pending => "pending",
            State::Detached => "detached",
            State::Leaked => "leaked",
            State::Held => "held",
            State::Dying => "dying",
            State::ShutDown => "shutdown",
            State::Freed => "freed",
        }
    }
}

/// The most recent evidence ids of one kind for one superblock.
#[derive(Clone, Copy, Default)]
pub(crate) struct SiteRing {
    ids: [u64; SITES_PER_SB],
    n: u64,
}

impl SiteRing {
    fn push(&mut self, id: u64) {
        self.ids[(self.n % SITES_PER_SB as u64) as usize] = id;
        self.n += 1;
    }

    /// Ids held, oldest first.
    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let held = self.n.min(SITES_PER_SB as u64);
        (self.n - held..self.n).map(move |i| self.ids[(i % SITES_PER_SB as u64) as usize])
    }
}

/// A reference taken or dropped, with its evidence.
#[derive(Clone, Copy, Default)]
pub(crate) struct Site {
    id: u64,
    kind: Kind,
    s_active: i32,
    ev: Evidence,
}

/// How many entries `sb->s_mounts` has, as far as two pointer reads tell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MountList {
    Empty,
    One,
    Many,
}

/// What names a superblock and the chain it is read along; fixed for its
/// life, read once.
#[derive(Clone, Copy, Default)]
pub(crate) struct Identity {
    fstype: Name<16>,
    s_id: Name<32>,
    dev: u32,
    /// Its `s_type`, compared with the types an audit walked.
    s_type: usize,
    /// The block device it is on (`s_bdev`), or 0.
    bdev: u32,
    /// The module of its filesystem type, or `builtin`.
    fs_module: Name<32>,
    /// The module of its block device's driver, or `builtin`; empty when
    /// there is no block device.
    disk_module: Name<32>,
}

/// What changes in a live superblock and can be read without locks.
#[derive(Clone, Copy)]
pub(crate) struct Snapshot {
    s_active: i32,
    list: MountList,
    /// Frozen (`s_writers.frozen` set): the freeze holds a reference.
    frozen: bool,
}

impl Snapshot {
    /// Reads `sb`.
    ///
    /// # Safety
    ///
    /// `sb` must point to a superblock that stays allocated during the call:
    /// the caller holds a reference, or `sb_lock` with `sb` listed.
    unsafe fn read(sb: usize) -> Self {
        let sb = sb as *mut bindings::super_block;
        // SAFETY: `sb` is live per the safety contract.  `s_active` is an
        // atomic_t, read as such.  `rl_sb_mounts` only needs `sb` allocated:
        // it tells empty, one entry or more, which is all a racy read can
        // say and all the ledger needs.
        unsafe {
            let s_active = core::ptr::read_volatile(&raw const (*sb).s_active.counter);
            let list = match bindings::rl_sb_mounts(sb) {
                0 => MountList::Empty,
                1 => MountList::One,
                _ => MountList::Many,
            };
            let frozen = core::ptr::read_volatile(&raw const (*sb).s_writers.frozen) != 0;
            Self {
                s_active,
                list,
                frozen,
            }
        }
    }
}

impl Identity {
    /// Reads what names `sb`.  Only a new record needs it, so probe handlers
    /// on a superblock already in the ledger never copy its names.
    ///
    /// # Safety
    ///
    /// As for [`Snapshot::read`].
    unsafe fn read(sb: usize) -> Self {
        let sb = sb as *mut bindings::super_block;
        // SAFETY: `sb` is live per the safety contract.  `s_type` and `s_id`
        // are set before a superblock is mounted and do not change; the
        // type's module is pinned by the superblock.  The block device is
        // the superblock's while it is mounted, except that btrfs replaces
        // `s_bdev` when a device is removed and then closes the old one; a
        // value read here was open when it was read, and a block device
        // (with its disk) is freed RCU-delayed (`bdev_free_inode`) and a
        // module only after `synchronize_rcu()`, while callers run with
        // preemption off (a probe handler) or under spinlocks (the audit),
        // an RCU read-side section.
        unsafe {
            let ty = (*sb).s_type;
            let (fstype, fs_module) = type_names(ty);
            let bdev = (*sb).s_bdev;
            let (bdev_dev, disk_module) = if bdev.is_null() {
                (0, Name::default())
            } else {
                let disk = (*bdev).bd_disk;
                let owner = if disk.is_null() || (*disk).fops.is_null() {
                    core::ptr::null_mut()
                } else {
                    (*(*disk).fops).owner
                };
                ((*bdev).bd_dev, bdevs::module_name(owner))
            };
            Self {
                fstype,
                s_id: Name::from_c((*sb).s_id.as_ptr()),
                dev: (*sb).s_dev,
                s_type: ty as usize,
                bdev: bdev_dev,
                fs_module,
                disk_module,
            }
        }
    }
}

/// The name of filesystem type `ty` and of its module (`builtin`).
///
/// # Safety
///
/// `ty` is NULL or the type of a superblock that stays allocated during
/// the call, which pins the type and its module.
unsafe fn type_names(ty: *mut bindings::file_system_type) -> (Name<16>, Name<32>) {
    if ty.is_null() {
        return (Name::default(), Name::default());
    }
    // SAFETY: Per the safety contract; `name` is a C string.
    unsafe { (Name::from_c((*ty).name), bdevs::module_name((*ty).owner)) }
}

impl Identity {
    /// Reads what names `sb` without following `s_bdev`, for the audit,
    /// which holds `sb_lock` but no reference: since 6.18 a superblock stays
    /// listed until its last passive reference, after `kill_block_super`
    /// may have put its block device.  The device number is `s_dev`, which
    /// `set_bdev_super` made the block device's; its driver is not known
    /// (`?`) until a probe that holds a reference reads it.
    ///
    /// # Safety
    ///
    /// The caller holds `sb_lock` and `sb` is on its type's `fs_supers`.
    unsafe fn read_listed(sb: usize) -> Self {
        let sb = sb as *mut bindings::super_block;
        // SAFETY: `sb` is allocated while listed under `sb_lock`.  `s_type`
        // is set before a superblock is listed and pinned (with its module)
        // by it.  `s_id` is a fixed array; a racing write to it by a mount
        // in progress can only tear the copy, which `Name` cleans.  `s_bdev`
        // is only compared with NULL.
        unsafe {
            let ty = (*sb).s_type;
            let (fstype, fs_module) = type_names(ty);
            let dev = (*sb).s_dev;
            let on_bdev = !core::ptr::read_volatile(&raw const (*sb).s_bdev).is_null();
            Self {
                fstype,
                s_id: Name::from_c((*sb).s_id.as_ptr()),
                dev,
                s_type: ty as usize,
                bdev: if on_bdev { dev } else { 0 },
                fs_module,
                disk_module: if on_bdev {
                    Name::literal(b"?")
                } else {
                    Name::default()
                },
            }
        }
    }
}

/// One superblock in the ledger.
#[derive(Clone, Copy, Default)]
pub(crate) struct Record {
    used: bool,
    sb: usize,
    id: Identity,
    state: State,
    state_since: u64,
    s_active: i32,
    has_mounts: bool,
    /// Struct mounts: those seen created, less those seen released, set
    /// from `s_mounts` whenever it is empty or has one entry.
    mounts: i32,
    /// Whether `mounts` is a full count rather than a lower bound.
    mounts_exact: bool,
    /// Mounts unmounted by umount(2) whose struct mount still exists.
    unmounted: i32,
    first_seen: u64,
    last_umount: u64,
    no_mounts_since: u64,
    shutdown: u64,
    freed: u64,
    flagged: u64,
    resolved: bool,
    stalled: u64,
    releases: SiteRing,
    acquires: SiteRing,
    n_releases: u32,
    n_acquires: u32,
    /// When an unmount or export was last refused while it existed, or 0.
    busy_at: u64,
    busy_count: u32,
    seen: bool,
    /// `SB_BORN` set: filled in by its filesystem.  Records made by probes
    /// are of born superblocks; the audit may list one that is not.
    born: bool,
    /// Frozen when last read.
    frozen: bool,
    /// `s_umount` held by someone when last audited (an unmount or
    /// remount in progress, or one stuck).
    umount_locked: bool,
    /// What `%p` prints for `sb`, filled in by the audit (0 until then):
    /// a read of 10,000 lines spent a sixth of its time in `vsnprintf`.
    hid: u64,
    /// Which record this is, counted from 1 while the module is loaded:
    /// printed after the hash (`sb=HASH.GEN`), it tells apart superblocks
    /// that had the same address one after the other.
    gen: u32,
}

impl Record {
    /// When the stall of a flagged superblock began: when its last mount
    /// went, or, for one flagged while still mounted (a ZFS hold that kept
    /// its reference), when it was flagged.
    fn stall_start(&self) -> u64 {
        if self.no_mounts_since != 0 {
            self.no_mounts_since
        } else {
            self.flagged
        }
    }

    fn set_state(&mut self, s: State, now: u64) {
        if self.state != s {
            self.state = s;
            self.state_since = now;
        }
    }

    /// Takes in what a snapshot says about mounts and `s_active`.
    fn apply(&mut self, snap: &Snapshot) {
        self.s_active = snap.s_active;
        self.frozen = snap.frozen;
        self.has_mounts = snap.list != MountList::Empty;
        match snap.list {
            MountList::Empty => {
                self.mounts = 0;
                self.mounts_exact = true;
                self.unmounted = 0;
            }
            MountList::One => {
                self.mounts = 1;
                self.mounts_exact = true;
                self.unmounted = self.unmounted.min(1);
            }
            MountList::Many => {
                if self.mounts < 2 {
                    self.mounts = 2;
                    self.mounts_exact = false;
                }
            }
        }
    }

    fn event(&self, kind: Kind, now: u64, ev: Option<&Evidence>, s_active: i32) -> Event {
        Event {
            time: now,
            kind,
            sb: self.sb,
            gen: self.gen,
            fstype: self.id.fstype,
            s_id: self.id.s_id,
            s_active,
            caller: ev.map_or(0, |e| e.caller),
            pid: ev.map_or(0, |e| e.pid),
            comm: ev.map_or(Comm::EMPTY, |e| e.comm),
        }
    }
}

/// A leak flag or its resolution, found while evaluating a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transition {
    Leak,
    Resolved,
    /// Past the grace period with no mounts: a leak unless a holder
    /// explains every reference, which only the audit can tell (a holder
    /// walk, in process context); handlers leave it to the audit.
    Suspect,
}

/// Moves a record to the state its facts say, applying the grace period.
fn evaluate(r: &mut Record, now: u64, grace: u64) -> Option<Transition> {
    if matches!(r.state, State::ShutDown | State::Freed) {
        return None;
    }
    let mut t = None;
    let new = if !r.born {
        State::Mounting
    } else if r.has_mounts {
        if r.state == State::Leaked {
            // Mounted again (a remount of the same superblock): what held it
            // was not a leak after all, or no longer matters.
            r.resolved = true;
            r.stalled = now.saturating_sub(r.no_mounts_since);
            t = Some(Transition::Resolved);
        }
        r.no_mounts_since = 0;
        if r.unmounted > 0 && r.mounts_exact && r.unmounted >= r.mounts {
            State::Pending
        } else {
            State::Live
        }
    } else if r.s_active <= 0 {
        State::Dying
    } else if r.frozen {
        // The freeze holds a reference until the filesystem is thawed
        // (mounted again and `fsfreeze -u`): a holder, not a leak.
        r.no_mounts_since = 0;
        State::Frozen
    } else {
        if r.no_mounts_since == 0 {
            r.no_mounts_since = now;
        }
        if now.saturating_sub(r.no_mounts_since) < grace {
            State::Detached
        } else {
            // A held one is walked again at every audit, in case its holder
            // went and something else kept the reference.
            if r.state != State::Leaked {
                t = Some(Transition::Suspect);
            }
            match r.state {
                State::Leaked | State::Held => r.state,
                _ => State::Detached,
            }
        }
    };
    r.set_state(new, now);
    t
}

/// Flags a record as leaked: the audit found no holder for the references
/// it has with no mounts.
fn flag(r: &mut Record, now: u64) -> Transition {
    r.flagged = now;
    r.resolved = false;
    r.set_state(State::Leaked, now);
    Transition::Leak
}

/// A first-in first-out list of record slots.
struct Fifo {
    slots: KVVec<u32>,
    head: usize,
    len: usize,
}

impl Fifo {
    fn new() -> Result<Self> {
        Ok(Self {
            slots: KVVec::from_elem(0, MAX_SBS, GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    fn push(&mut self, v: u32) {
        if self.len == MAX_SBS {
            return;
        }
        self.slots[(self.head + self.len) % MAX_SBS] = v;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let v = self.slots[self.head];
        self.head = (self.head + 1) % MAX_SBS;
        self.len -= 1;
        Some(v)
    }
}

/// All superblock records, an index from superblock address to record, and
/// the shared evidence store.  Protected by the ledger's lock.
///
/// # Invariants
///
/// A record is in `index` if and only if it is used and not `Freed`.  Every
/// slot that is not used is in `free`.  Slots in `freed` and `resolved` are
/// used records in state `Freed`.
pub(crate) struct Table {
    recs: KVVec<Record>,
    index: KVVec<u32>,
    free: KVVec<u32>,
    nfree: usize,
    freed: Fifo,
    resolved: Fifo,
    sites: KVVec<Site>,
    next_site: u64,
    /// The last record generation given; never reset, so that a `reset`
    /// does not give an id again.
    last_gen: u32,
    /// One past the highest slot used since the last clear: walks stop
    /// there.  Free slots are reused last freed first, so under churn this
    /// stays near the number of superblocks tracked at once, not the
    /// table's capacity.
    hwm: usize,
    /// Superblocks not tracked because the table was full of live ones.
    pub(crate) dropped: u64,
}

fn hash(sb: usize) -> usize {
    ((sb as u64 >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - INDEX_SIZE.trailing_zeros()))
        as usize
}

impl Table {
    /// Allocates the table, empty.
    pub(crate) fn new() -> Result<Self> {
        let mut free = KVVec::with_capacity(MAX_SBS, GFP_KERNEL)?;
        for i in (0..MAX_SBS as u32).rev() {
            free.push(i, GFP_KERNEL)?;
        }
        // INVARIANT: No record is used; every slot is free.
        Ok(Self {
            recs: KVVec::from_elem(Record::default(), MAX_SBS, GFP_KERNEL)?,
            index: KVVec::from_elem(EMPTY, INDEX_SIZE, GFP_KERNEL)?,
            free,
            nfree: MAX_SBS,
            freed: Fifo::new()?,
            resolved: Fifo::new()?,
            sites: KVVec::from_elem(Site::default(), MAX_SITES, GFP_KERNEL)?,
            next_site: 0,
            last_gen: 0,
            hwm: 0,
            dropped: 0,
        })
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        for r in self.recs.iter_mut() {
            r.used = false;
        }
        for v in self.index.iter_mut() {
            *v = EMPTY;
        }
        for (i, f) in self.free.iter_mut().enumerate() {
            *f = (MAX_SBS - 1 - i) as u32;
        }
        self.nfree = MAX_SBS;
        self.freed.len = 0;
        self.resolved.len = 0;
        self.next_site = 0;
        self.hwm = 0;
        self.dropped = 0;
    }

    /// Superblocks tracked now.
    pub(crate) fn tracked(&self) -> usize {
        MAX_SBS - self.nfree
    }

    /// How many slots from 0 a walk of the records must visit.
    pub(crate) fn slots(&self) -> usize {
        self.hwm
    }

    fn find(&self, sb: usize) -> Option<usize> {
        let mut h = hash(sb);
        // INDEX_SIZE is more than twice MAX_SBS, so an empty slot ends
        // every probe sequence.
        loop {
            match self.index[h] {
                EMPTY => return None,
                v if self.recs[(v - 1) as usize].used && self.recs[(v - 1) as usize].sb == sb => {
                    return Some((v - 1) as usize)
                }
                _ => {}
            }
            h = (h + 1) % INDEX_SIZE;
        }
    }

    fn index_insert(&mut self, sb: usize, slot: usize) {
        let mut h = hash(sb);
        while self.index[h] != EMPTY {
            h = (h + 1) % INDEX_SIZE;
        }
        self.index[h] = slot as u32 + 1;
    }

    /// Removes `slot` from the index by backward-shift deletion, as linear
    /// probing allows: entries after it in its run move up, so no
    /// tombstones accumulate and no rebuild is ever needed.  The work is the
    /// length of one run, short because the index is at most 3/8 full.
    fn index_remove(&mut self, slot: usize) {
        let mut h = hash(self.recs[slot].sb);
        loop {
            match self.index[h] {
                EMPTY => return,
                v if v == slot as u32 + 1 => break,
                _ => h = (h + 1) % INDEX_SIZE,
            }
        }
        let mut hole = h;
        let mut j = h;
        loop {
            self.index[hole] = EMPTY;
            loop {
                j = (j + 1) % INDEX_SIZE;
                let v = self.index[j];
                if v == EMPTY {
                    return;
                }
                // Where the entry at `j` would like to be: it may move to
                // the hole only if that is not before its home, cyclically.
                let home = hash(self.recs[(v - 1) as usize].sb);
                let stays = if hole <= j {
                    hole < home && home <= j
                } else {
                    hole < home || home <= j
                };
                if !stays {
                    self.index[hole] = v;
                    hole = j;
                    break;
                }
            }
        }
    }

    fn release_slot(&mut self, slot: usize) {
        self.recs[slot].used = false;
        self.free[self.nfree] = slot as u32;
        self.nfree += 1;
    }

    /// Finds a slot for a new record: a free one, else the oldest freed
    /// record's, else the oldest resolved one's.
    fn alloc_slot(&mut self) -> Option<usize> {
        if self.nfree == 0 {
            let victim = self.freed.pop().or_else(|| self.resolved.pop())?;
            self.release_slot(victim as usize);
        }
        self.nfree -= 1;
        let slot = self.free[self.nfree] as usize;
        self.hwm = self.hwm.max(slot + 1);
        Some(slot)
    }

    /// Marks a record freed, drops it from the index and keeps it for display
    /// within the `KEEP_*` limits.
    fn retire(&mut self, slot: usize, now: u64) {
        // Freed first: a rebuild inside `index_remove` must not put it back.
        let r = &mut self.recs[slot];
        r.set_state(State::Freed, now);
        r.freed = now;
        self.index_remove(slot);
        let r = &self.recs[slot];
        if r.flagged != 0 {
            self.resolved.push(slot as u32);
            while self.resolved.len > KEEP_RESOLVED {
                if let Some(v) = self.resolved.pop() {
                    self.release_slot(v as usize);
                }
            }
        } else {
            self.freed.push(slot as u32);
            while self.freed.len > KEEP_FREED {
                if let Some(v) = self.freed.pop() {
                    self.release_slot(v as usize);
                }
            }
        }
    }

    /// The record of `sb`, made if there is none.  `alive` says the caller
    /// just saw `sb` mounted or listed, so a `ShutDown` record for the same
    /// address belongs to an earlier superblock that was freed and whose
    /// memory was reused.  Returns the slot and whether it is new, or `None`
    /// when the table is full of live superblocks (counted in `dropped`).
    ///
    /// A new record reads its identity: with [`Identity::read_listed`] when
    /// `listed` (the audit), else with [`Identity::read`].
    ///
    /// # Safety
    ///
    /// `sb` must be live, as for [`Snapshot::read`], and when `listed` the
    /// caller holds `sb_lock` with `sb` listed, as for
    /// [`Identity::read_listed`].
    unsafe fn get(
        &mut self,
        sb: usize,
        snap: &Snapshot,
        alive: bool,
        listed: bool,
        now: u64,
    ) -> Option<(usize, bool)> {
        if let Some(i) = self.find(sb) {
            if !(alive && self.recs[i].state == State::ShutDown) {
                if !listed && self.recs[i].id.disk_module.is(b"?") {
                    // Made by the audit, which does not follow `s_bdev`;
                    // this caller holds a reference and may.
                    // SAFETY: `sb` is live per the safety contract.
                    self.recs[i].id = unsafe { Identity::read(sb) };
                }
                return Some((i, false));
            }
            self.retire(i, now);
        }
        let Some(i) = self.alloc_slot() else {
            self.dropped += 1;
            return None;
        };
        self.last_gen = self.last_gen.wrapping_add(1).max(1);
        self.recs[i] = Record {
            used: true,
            sb,
            gen: self.last_gen,
            // SAFETY: `sb` is live per the safety contract, and listed
            // under `sb_lock` when `listed`.
            id: unsafe {
                if listed {
                    Identity::read_listed(sb)
                } else {
                    Identity::read(sb)
                }
            },
            state_since: now,
            first_seen: now,
            mounts_exact: snap.list != MountList::Many,
            born: true,
            ..Record::default()
        };
        self.recs[i].apply(snap);
        self.index_insert(sb, i);
        Some((i, true))
    }

    fn push_site(&mut self, kind: Kind, s_active: i32, ev: &Evidence) -> u64 {
        self.next_site += 1;
        let id = self.next_site;
        self.sites[(id % MAX_SITES as u64) as usize] = Site {
            id,
            kind,
            s_active,
            ev: *ev,
        };
        id
    }

    /// The generation of the record of live superblock `sb`, or 0.
    pub(crate) fn gen(&self, sb: usize) -> u32 {
        self.find(sb).map_or(0, |i| self.recs[i].gen)
    }

    /// Whether `sb` is a tracked, not freed superblock of type `fstype`.
    pub(crate) fn is_fstype(&self, sb: usize, fstype: &[u8]) -> bool {
        self.find(sb)
            .is_some_and(|i| self.recs[i].id.fstype.is(fstype))
    }

    /// `zfsvfs_hold` returned EBUSY keeping a reference to `sb`: keep the
    /// call as an acquisition of the superblock, and flag it as leaked at
    /// once (OpenZFS #18309).
    pub(crate) fn note_hold_leak(&mut self, sb: usize, now: u64, ev: &Evidence) -> Option<Event> {
        let i = self.find(sb)?;
        let s_active = self.recs[i].s_active;
        let id = self.push_site(Kind::HoldLeak, s_active, ev);
        let r = &mut self.recs[i];
        r.acquires.push(id);
        r.n_acquires += 1;
        if r.flagged == 0 {
            r.flagged = now;
            r.resolved = false;
        }
        Some(r.event(Kind::HoldLeak, now, Some(ev), s_active))
    }

    /// An unmount of `sb` was refused with EBUSY: mark it busy now, with
    /// an event, so `leaks` can say what held it.  Only a superblock that
    /// can still hold something counts: not one shut down (an older record
    /// at a reused address).
    pub(crate) fn note_busy(
        &mut self,
        sb: usize,
        now: u64,
        ev: &Evidence,
        kind: Kind,
    ) -> Option<Event> {
        let i = self.find(sb)?;
        let r = &mut self.recs[i];
        if matches!(r.state, State::ShutDown | State::Freed | State::Dying) {
            return None;
        }
        r.busy_at = now;
        r.busy_count += 1;
        Some(r.event(kind, now, Some(ev), r.s_active))
    }

    fn site(&self, id: u64) -> Option<Site> {
        let s = self.sites[(id % MAX_SITES as u64) as usize];
        (s.id == id && id != 0).then_some(s)
    }
}

/// Runs `f` on the ledger's locked state with `sb`'s record, creating it if
/// needed, at time `now` (a probe handler's evidence time: the clock is read
/// once).  A new record is announced with a `seen` event unless `quiet`.
///
/// # Safety
///
/// As for [`Table::get`] with the same `sb` and `listed`.
#[allow(clippy::too_many_arguments)]
unsafe fn with_record(
    inner: &mut Inner,
    sb: usize,
    snap: &Snapshot,
    alive: bool,
    listed: bool,
    quiet: bool,
    now: u64,
    f: impl FnOnce(&mut Inner, usize, u64),
) {
    // SAFETY: Per the safety contract.
    let Some((i, new)) = (unsafe { inner.sbs.get(sb, snap, alive, listed, now) }) else {
        return;
    };
    if new && !quiet {
        let e = inner.sbs.recs[i].event(Kind::Seen, now, None, snap.s_active);
        inner.events.push(e);
    }
    f(inner, i, now);
}

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
    acquired(l, regs, sb, Kind::Mount, data[0], deep);
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
    // fsmount(2) comes the same way every time; mount(2) and in-kernel
    // mounts share `fc_mount`, so only a stack tells them apart.
    let deep = !FSMOUNT.is(caller, &[b"__do_sys_fsmount", b"__x64_sys_fsmount"]);
    // `setup_mnt` took an `s_active` reference for the new mount, which its
    // caller owns, so the superblock the entry handler saw is still live.
    acquired(l, regs, data[0], kind, caller, deep);
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
    acquired(l, regs, data[0], Kind::Clone, data[1], true);
}

/// A struct mount of `sb` was created, from `caller`; `regs` are the return
/// handler's, unwound for a stack if `deep`.
fn acquired(l: &Ledger, regs: &Regs, sb: usize, kind: Kind, caller: usize, deep: bool) {
    let ev = Evidence::capture_if(regs, caller, deep);
    // SAFETY: The new mount holds a reference to `sb`.
    let snap = unsafe { Snapshot::read(sb) };
    let update = |inner: &mut Inner, i: usize, now: u64| {
        let id = inner.sbs.push_site(kind, snap.s_active, &ev);
        let grace = l.grace_ns();
        let r = &mut inner.sbs.recs[i];
        // A record made just now counted this mount already.
        if r.first_seen != now {
            r.mounts += 1;
        }
        r.apply(&snap);
        r.acquires.push(id);
        r.n_acquires += 1;
        let t = evaluate(r, now, grace);
        let e = r.event(kind, now, Some(&ev), snap.s_active);
        inner.events.push(e);
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
        (l.busy)(data[0]);
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
    let r = &mut inner.sbs.recs[i];
    r.unmounted += 1;
    r.last_umount = now;
    let e = r.event(Kind::Umount, now, Some(&ev), r.s_active);
    inner.events.push(e);
}

static MOUNT_RELEASE: SiteClass = SiteClass::new();
static CONTEXT_RELEASE: SiteClass = SiteClass::new();

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
        r.n_releases += 1;
        let t = evaluate(r, now, grace);
        let e = r.event(Kind::Release, now, Some(&ev), snap.s_active);
        inner.events.push(e);
        if let Some(t) = t {
            note_transition(&inner.sbs.recs[i], t, now, &mut inner.events);
        }
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    // SAFETY: The caller of `deactivate_super` holds the reference it drops.
    unsafe { with_record(&mut inner, sb, &snap, false, false, false, ev.time, update) };
}

/// For a kprobe on a function whose first argument is a superblock: the
/// ledger, the superblock and the call's evidence.  The evidence is shallow
/// (no stack): it goes only into events, which show the caller, and these
/// calls run on every unmount, where a stack would be the dearest part.
fn sb_call(regs: &Regs) -> Option<(&'static Ledger, usize, Evidence)> {
    let l = ledger::get()?;
    Some((
        l,
        regs.arg(0),
        Evidence::capture_shallow(regs.entry_return_address()),
    ))
}

/// `deactivate_locked_super(sb)`: drops a reference with `s_umount` held.
/// The last one (`s_active` 1) shuts the superblock down; others come from
/// `thaw_super` (the freeze's reference) or a mount that found an existing
/// superblock (`get_tree_bdev`, `vfs_get_super`).
fn on_deactivate_locked_super(regs: &Regs) {
    let Some((l, sb, ev)) = sb_call(regs) else {
        return;
    };
    if sb == 0 {
        return;
    }
    let now = ev.time;
    // SAFETY: The caller holds `s_umount` and the reference it drops.
    let s_active = unsafe { Snapshot::read(sb) }.s_active;
    let kind = if s_active <= 1 {
        Kind::FinalRelease
    } else {
        Kind::LockedRelease
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let Some(i) = inner.sbs.find(sb) else { return };
    let e = inner.sbs.recs[i].event(kind, now, Some(&ev), s_active);
    inner.events.push(e);
}

fn on_generic_shutdown_super(regs: &Regs) {
    let Some((l, sb, ev)) = sb_call(regs) else {
        return;
    };
    let now = ev.time;
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let Some(i) = inner.sbs.find(sb) else { return };
    let r = &mut inner.sbs.recs[i];
    r.shutdown = now;
    r.s_active = 0;
    r.set_state(State::ShutDown, now);
    let resolved = r.flagged != 0 && !r.resolved;
    if resolved {
        r.resolved = true;
        r.stalled = now.saturating_sub(r.stall_start());
    }
    let shut = r.event(Kind::Shutdown, now, Some(&ev), 0);
    let res = resolved.then(|| r.event(Kind::Resolved, now, Some(&ev), 0));
    inner.bdevs.holder_shut_down(sb, now);
    inner.events.push(shut);
    if let Some(res) = res {
        inner.events.push(res);
    }
}

/// A refusal that concerns every superblock of a type (`zpool export`):
/// marks each one that can still hold something busy, with an event, one
/// record at a time.  Process context: handlers leave this to the audit.
fn mark_all_busy(l: &Ledger, fstype: &[u8], now: u64, ev: &Evidence, kind: Kind) {
    for i in 0..slots(l) {
        let mut guard = l.inner.lock();
        let inner = &mut *guard;
        let r = &mut inner.sbs.recs[i];
        if !r.used
            || matches!(r.state, State::ShutDown | State::Freed | State::Dying)
            || !r.id.fstype.is(fstype)
        {
            continue;
        }
        r.busy_at = now;
        r.busy_count += 1;
        let e = r.event(kind, now, Some(ev), r.s_active);
        inner.events.push(e);
    }
}

/// What [`audit_one`] needs during a walk.
struct AuditWalk<'a> {
    l: &'a Ledger,
    now: u64,
    /// Superblocks found by the first audit after load or reset predate the
    /// ledger: they are listed, not announced.
    quiet: bool,
}

/// # Safety
///
/// Called by `rl_walk_supers` with RCU read-locked, `sb_lock` held and `sb`
/// on its type's `fs_supers`; `arg` is the [`AuditWalk`] that [`audit`]
/// passed.
unsafe extern "C" fn audit_one(sb: *mut bindings::super_block, arg: *mut c_void) {
    // SAFETY: `arg` is the walk state, borrowed by `audit` for the walk.
    let w = unsafe { &*(arg as *const AuditWalk<'_>) };
    // SAFETY: `sb` is allocated while listed under `sb_lock`.
    let state = unsafe { bindings::rl_sb_state(sb) };
    if state & bindings::RL_SB_DYING != 0 {
        // Shut down (since 6.18 a superblock stays listed until its last
        // passive reference): as good as gone for the ledger.
        return;
    }
    // SAFETY: As above.
    let snap = unsafe { Snapshot::read(sb as usize) };
    let born = state & bindings::RL_SB_BORN != 0;
    let umount_locked = state & bindings::RL_SB_UMOUNT_LOCKED != 0;
    let update = |inner: &mut Inner, i: usize, _now: u64| {
        let r = &mut inner.sbs.recs[i];
        r.apply(&snap);
        r.born = born;
        r.umount_locked = umount_locked;
        r.seen = true;
    };
    let mut inner = w.l.inner.lock();
    // A record shut down at this address is this superblock still being
    // torn down if nothing holds it (`s_active` 0); a superblock listed
    // with references is a new one at a reused address.
    let alive = snap.s_active > 0;
    // SAFETY: `sb` is listed and `sb_lock` is held, as `Table::get` needs
    // with `listed`.
    unsafe {
        with_record(
            &mut inner,
            sb as usize,
            &snap,
            alive,
            true,
            w.quiet,
            w.now,
            update,
        )
    };
}

/// Records an audit handles under one taking of the ledger's lock (eight
/// times as many when it only clears a flag): taking it once per record was
/// a tenth of a read of 10,000 superblocks, and a batch keeps a handler
/// waiting a few microseconds at most.
const AUDIT_BATCH: usize = 32;

/// The most filesystem types an audit remembers walking; with more, records
/// of types beyond them are never taken for freed.
pub(crate) const MAX_TYPES: usize = 512;

/// Reconciles the ledger with every superblock's real `s_active` and
/// `s_mounts`, applies the grace period and flags leaks.  Process context
/// only; it never blocks on a filesystem (see `rl_walk_supers`): the only
/// lock it waits for is the audit lock, held by other audits, which never
/// block either.
pub(crate) fn audit(l: &Ledger) {
    let mut types = l.audit_lock.lock();
    audit_locked(l, &mut types);
}

/// [`audit`], for a caller that holds the audit lock, whose scratch space
/// for the types walked is `types`.
pub(crate) fn audit_locked(l: &Ledger, types: &mut [usize]) {
    let start_ns = now_ns();
    let export = {
        let mut inner = l.inner.lock();
        inner.bdevs.relist_held();
        inner.zfs.take_export_busy()
    };
    if let Some((time, ev)) = export {
        mark_all_busy(l, b"zfs", time, &ev, Kind::ExportBusy);
    }
    let n = slots(l);
    for start in (0..n).step_by(AUDIT_BATCH * 8) {
        let mut inner = l.inner.lock();
        for r in inner.sbs.recs[start..(start + AUDIT_BATCH * 8).min(n)].iter_mut() {
            r.seen = false;
        }
    }
    let walk = AuditWalk {
        l,
        now: start_ns,
        quiet: l.seeding.load(core::sync::atomic::Ordering::Relaxed),
    };
    let mut ntypes = 0u32;
    // SAFETY: `audit_one` matches the callback type and `walk` outlives the
    // walk; `types` has room for `types.len()` entries.
    unsafe {
        bindings::rl_walk_supers(
            l.first_fs_type(),
            Some(audit_one),
            core::ptr::from_ref(&walk).cast_mut().cast(),
            types.as_mut_ptr().cast(),
            types.len() as u32,
            &mut ntypes,
        )
    };
    let walked = &mut types[..(ntypes as usize).min(MAX_TYPES)];
    insertion_sort(walked);
    let walked = &*walked;
    // With more types than remembered, a record's type may have been walked
    // without being remembered: then no record is taken for freed.
    let complete = ntypes as usize <= MAX_TYPES;
    l.note_audit(start_ns, ntypes);

    let now = now_ns();
    let grace = l.grace_ns();
    // A batch of records at a time, so probe handlers never wait long for
    // the lock; what must not run under it (printing a leak, hashing an
    // id) is done after each batch.
    let n = slots(l);
    for start in (0..n).step_by(AUDIT_BATCH) {
        let end = (start + AUDIT_BATCH).min(n);
        let mut reports = [0usize; AUDIT_BATCH];
        let mut nreports = 0;
        let mut no_hid = [(0usize, 0usize); AUDIT_BATCH];
        let mut nno_hid = 0;
        let mut suspects = [(0usize, 0usize, 0u32); AUDIT_BATCH];
        let mut nsuspects = 0;
        {
            let mut guard = l.inner.lock();
            let inner = &mut *guard;
            for i in start..end {
                let r = &inner.sbs.recs[i];
                if !r.used || r.state == State::Freed {
                    continue;
                }
                if r.hid == 0 {
                    no_hid[nno_hid] = (i, r.sb);
                    nno_hid += 1;
                }
                if r.seen {
                    let r = &mut inner.sbs.recs[i];
                    match evaluate(r, now, grace) {
                        Some(Transition::Suspect) => {
                            suspects[nsuspects] = (i, r.sb, r.gen);
                            nsuspects += 1;
                        }
                        Some(t) => note_transition(r, t, now, &mut inner.events),
                        None => {}
                    }
                } else if r.first_seen < start_ns
                    && (r.state == State::ShutDown
                        || (complete && walked.binary_search(&r.id.s_type).is_ok()))
                {
                    // (A record made by a probe during the walk may simply
                    // not have been listed yet when its type was walked.)
                    // Not listed any more: shut down and freed, or being
                    // torn down.  A record we saw shut down is freed now;
                    // any other is dying, and freed if it is still missing
                    // at the next audit.
                    if matches!(r.state, State::ShutDown | State::Dying) {
                        let e = r.event(Kind::Freed, now, None, 0);
                        inner.sbs.retire(i, now);
                        inner.events.push(e);
                    } else {
                        inner.sbs.recs[i].set_state(State::Dying, now);
                    }
                }
            }
        }
        // Each suspect is judged by a holder walk, with the lock dropped;
        // then, under it, flagged or held if it has not moved on meanwhile.
        for &(i, sb, gen) in &suspects[..nsuspects] {
            let explained = (l.explain)(sb) == Some(true);
            let mut guard = l.inner.lock();
            let inner = &mut *guard;
            let r = &mut inner.sbs.recs[i];
            // The walk took a while: still the same superblock, still
            // without mounts, and still past its grace period (a mount
            // and unmount meanwhile starts it again).
            let now = now_ns();
            if !r.used
                || r.sb != sb
                || r.gen != gen
                || r.has_mounts
                || r.no_mounts_since == 0
                || now.saturating_sub(r.no_mounts_since) < grace
                || !matches!(r.state, State::Detached | State::Held)
            {
                continue;
            }
            if explained {
                r.set_state(State::Held, now);
            } else {
                let t = flag(r, now);
                note_transition(r, t, now, &mut inner.events);
                reports[nreports] = i;
                nreports += 1;
            }
        }
        // Printed with the lock dropped, from a copy: the record may have
        // moved on meanwhile, which the printed line can only trail.
        for &i in &reports[..nreports] {
            if let Some(r) = copy_bare(l, i) {
                report_leak(&r, now.saturating_sub(r.no_mounts_since) / 1_000_000);
            }
        }
        for &(i, sb) in &no_hid[..nno_hid] {
            fill_hid(l, i, sb);
        }
    }
}

/// Fills in record `i`'s `hid`, for superblock `sb`, hashing with the lock
/// dropped: handlers never wait for `vsnprintf`.
fn fill_hid(l: &Ledger, i: usize, sb: usize) {
    // SAFETY: `rl_ptr_hash` only formats the value with `%p`, which hashes
    // it and never dereferences it.
    let hid = unsafe { bindings::rl_ptr_hash(sb as kernel::ffi::c_ulong) };
    if hid == 0 {
        return;
    }
    let mut inner = l.inner.lock();
    let r = &mut inner.sbs.recs[i];
    // The slot may have been retired and reused meanwhile.
    if r.used && r.sb == sb {
        r.hid = hid;
    }
}

/// Sorts a few hundred words.  Not `sort_unstable`: core's sort, as built
/// by rustc 1.85, ends in a call objtool does not know cannot return, and
/// the stock kernel's build warns about it.
fn insertion_sort(v: &mut [usize]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Records what [`evaluate`] found as an event.  The dmesg line for a new
/// leak is the audit's, printed outside the lock.
fn note_transition(r: &Record, t: Transition, now: u64, events: &mut events::Ring) {
    match t {
        Transition::Leak => events.push(r.event(Kind::Leak, now, None, r.s_active)),
        Transition::Resolved => events.push(r.event(Kind::Resolved, now, None, r.s_active)),
        Transition::Suspect => {}
    }
}

fn report_leak(r: &Record, stalled_ms: u64) {
    let mut fstype = [0u8; 17];
    let mut s_id = [0u8; 33];
    fstype[..r.id.fstype.as_str().len()].copy_from_slice(r.id.fstype.as_str().as_bytes());
    s_id[..r.id.s_id.as_str().len()].copy_from_slice(r.id.s_id.as_str().as_bytes());
    // SAFETY: Both names are NUL-terminated; `sb` is only printed, hashed.
    unsafe {
        bindings::rl_report_leak(
            fstype.as_ptr().cast(),
            s_id.as_ptr().cast(),
            r.sb as *const c_void,
            r.gen,
            r.s_active,
            stalled_ms as usize,
        )
    };
}

/// Prints `sb=<id> fstype=.. s_id=.. dev=M:m` (no newline).
fn show_identity(m: &SeqFile, r: &Record) {
    m.hashed_as(c_str!("sb=%p"), r.sb);
    seq_print!(m, ".{}{}", r.gen, Names(&r.id));
}

/// ` fstype=.. s_id=.. dev=M:m`, as [`show_identity`] prints after `sb=`.
struct Names<'a>(&'a Identity);

impl core::fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            " fstype={} s_id={} dev={}",
            self.0.fstype.as_str(),
            self.0.s_id.as_str(),
            DevT(self.0.dev)
        )
    }
}

/// Prints the chain a stuck unmount is read along: the block device and the
/// modules of the filesystem type and of the disk driver.
fn show_chain(m: &SeqFile, r: &Record) {
    seq_print!(m, "{}", Chain(r));
}

/// ` bdev=.. disk_module=.. fs_module=..`, as [`show_chain`] prints it.
struct Chain<'a>(&'a Record);

impl core::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let id = &self.0.id;
        if id.bdev != 0 {
            write!(
                f,
                " bdev={} disk_module={}",
                DevT(id.bdev),
                id.disk_module.as_str()
            )?;
        } else {
            f.write_str(" bdev=-")?;
        }
        write!(f, " fs_module={}", id.fs_module.as_str())
    }
}

/// `mounts=N`, or `mounts=N+` when `N` is a lower bound.
struct Mounts<'a>(&'a Record);

impl core::fmt::Display for Mounts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let plus = if self.0.mounts_exact { "" } else { "+" };
        write!(f, "mounts={}{}", self.0.mounts, plus)
    }
}

/// Prints the live superblocks whose filesystem type is module `name`.
pub(crate) fn show_holders_of(l: &Ledger, m: &SeqFile, name: &[u8]) {
    for i in 0..slots(l) {
        let Some(r) = copy_bare(l, i) else {
            continue;
        };
        if !r.id.fs_module.is(name) || matches!(r.state, State::ShutDown | State::Freed) {
            continue;
        }
        seq_print!(m, "  held_by ");
        show_identity(m, &r);
        seq_print!(m, " state={} s_active={}\n", r.state.name(), r.s_active);
    }
}

fn show_mounts(m: &SeqFile, r: &Record) {
    seq_print!(m, " {}", Mounts(r));
}

/// A record with its release and acquisition evidence.
type RecordCopy = (
    Record,
    [Option<Site>; SITES_PER_SB],
    [Option<Site>; SITES_PER_SB],
);

/// Copies record `i` out of the table without its evidence, under the lock,
/// for readers that print only the record.
fn copy_bare(l: &Ledger, i: usize) -> Option<Record> {
    let inner = l.inner.lock();
    let r = &inner.sbs.recs[i];
    r.used.then_some(*r)
}

/// Lines the `superblocks` file formats under one taking of the lock.
/// Formatting straight from the table, with no copy of the record, halves
/// what a line costs; eight lines keep a handler waiting a few microseconds
/// at most.
const LINE_BATCH: usize = 8;

/// The generation of the record of the live superblock at `sb` (the part
/// of its id after the dot), or 0 when it has none.
pub(crate) fn gen_of(l: &Ledger, sb: usize) -> u32 {
    l.inner.lock().sbs.gen(sb)
}

/// How many slots a reader walks (see [`Table::slots`]).
fn slots(l: &Ledger) -> usize {
    l.inner.lock().sbs.slots()
}

/// Copies record `i` out of the table, with its evidence, under the lock.
fn copy_record(l: &Ledger, i: usize) -> Option<RecordCopy> {
    let inner = l.inner.lock();
    let r = inner.sbs.recs[i];
    if !r.used {
        return None;
    }
    let mut rel = [None; SITES_PER_SB];
    let mut acq = [None; SITES_PER_SB];
    for (d, id) in rel.iter_mut().zip(r.releases.iter()) {
        *d = inner.sbs.site(id);
    }
    for (d, id) in acq.iter_mut().zip(r.acquires.iter()) {
        *d = inner.sbs.site(id);
    }
    Some((r, rel, acq))
}

/// The `superblocks` file.
pub(crate) struct SuperblocksFile;

impl Show for SuperblocksFile {
    fn size_hint(&self) -> usize {
        // About 300 bytes a line: one read, no retry with a larger buffer.
        ledger::get().map_or(0, |l| (l.inner.lock().sbs.tracked() + 1) * 320)
    }

    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        audit(l);
        let now = now_ns();
        let (last, types, walk_error) = l.audit_info();
        let (tracked, dropped) = {
            let inner = l.inner.lock();
            (inner.sbs.tracked(), inner.sbs.dropped)
        };
        seq_print!(
            m,
            "# tracked={} capacity={} dropped={} grace_ms={} handler_lock_contended={}\n",
            tracked,
            MAX_SBS,
            dropped,
            l.grace_ms(),
            l.inner.contended()
        );
        if walk_error != 0 {
            seq_print!(m, "# audit=unavailable error={}\n", walk_error);
        } else {
            seq_print!(
                m,
                "# audit=ok age_ms={} fs_types={}\n",
                now.saturating_sub(last) / 1_000_000,
                types
            );
        }
        // A few records at a time (`LINE_BATCH`), so probe handlers never
        // wait long for the lock.  Slots keep their records, so the order is
        // stable.  A line is built without `core::fmt` (see `Line`) and
        // written with one call; only a record the audit has not yet given
        // an id (`hid`) costs a second, `%p`, call.
        let mut line = Line::new();
        let n = slots(l);
        for start in (0..n).step_by(LINE_BATCH) {
            let inner = l.inner.lock();
            let end = (start + LINE_BATCH).min(n);
            for r in inner.sbs.recs[start..end].iter().filter(|r| r.used) {
                show_row(m, &mut line, r, now);
            }
        }
        Ok(())
    }
}

/// One `superblocks` line, formatted with the ledger's lock held: it
/// neither sleeps nor allocates (`seq_write` copies into the buffer the
/// seq_file core allocated, and a line that does not fit is retried by it).
fn show_row(m: &SeqFile, line: &mut Line, r: &Record, now: u64) {
    if r.hid != 0 {
        line.str("sb=").hex16(r.hid);
    } else {
        m.hashed_as(c_str!("sb=%p"), r.sb);
    }
    line.str(".").u64(r.gen.into());
    let id = &r.id;
    line.str(" fstype=")
        .name(id.fstype.raw())
        .str(" s_id=")
        .name(id.s_id.raw())
        .str(" dev=")
        .dev(id.dev)
        .str(" state=")
        .str(r.state.name())
        .str(" s_active=")
        .i64(r.s_active.into())
        .str(" mounts=")
        .i64(r.mounts.into())
        .str(if r.mounts_exact { "" } else { "+" });
    if id.bdev != 0 {
        line.str(" bdev=")
            .dev(id.bdev)
            .str(" disk_module=")
            .name(id.disk_module.raw());
    } else {
        line.str(" bdev=-");
    }
    line.str(" fs_module=")
        .name(id.fs_module.raw())
        .str(" unmounted=")
        .i64(r.unmounted.into())
        .str(" state_ms=")
        .u64(now.saturating_sub(r.state_since) / 1_000_000)
        .str(" first_seen=")
        .secs(r.first_seen)
        .str(" last_umount=")
        .secs(r.last_umount)
        .str(" shutdown=")
        .secs(r.shutdown)
        .str(" releases=")
        .u64(r.n_releases.into())
        .str(" acquires=")
        .u64(r.n_acquires.into())
        .str(" s_umount=")
        .str(if r.umount_locked { "held" } else { "free" })
        .end(m);
}

fn show_site(m: &SeqFile, s: &Site) {
    let what = if s.kind == Kind::Release {
        "release"
    } else {
        "acquire"
    };
    seq_print!(
        m,
        "  {} t={} kind={} s_active={} ",
        what,
        Secs(s.ev.time),
        events_kind(s.kind),
        s.s_active
    );
    s.ev.show_who(m);
    seq_print!(m, "\n");
    s.ev.show_stack(m, "    ");
}

fn events_kind(k: Kind) -> &'static str {
    match k {
        Kind::Mount => "mount",
        Kind::Clone => "clone",
        Kind::Release => "deactivate_super",
        Kind::HoldLeak => "zfsvfs_hold_ebusy",
        _ => "other",
    }
}

/// Whether a holder explains every reference of the superblock at this
/// address (`None`: it cannot be told).  A join of the ledger with the
/// kernel's objects (see `holders`), given to the ledger at load, so that
/// this table never imports it.  Process context.
pub(crate) type Explain = fn(usize) -> Option<bool>;

/// What the `leaks` file adds under a busy or leaked superblock: who holds
/// it, found by a join of the ledger with the kernel's objects (see
/// `holders`); this table only says where it goes.
pub(crate) trait HolderReport {
    /// Appends ` held_by=...`, naming the first holder found, if any.
    fn held_by(&self, m: &SeqFile);
    /// Prints the balance and one line per holder, each indented by two
    /// spaces.
    fn show(&self, m: &SeqFile);
}

/// The superblock part of the `leaks` file: each flagged superblock, with
/// its evidence and, from `walk` (given the superblock's address and its
/// record's generation, for one not being shut down), its holders.
pub(crate) fn show_leaks<H: HolderReport>(
    l: &Ledger,
    m: &SeqFile,
    walk: impl Fn(usize, u32) -> Option<H>,
) -> Result {
    audit(l);
    let now = now_ns();
    for i in 0..slots(l) {
        let Some((r, rel, acq)) = copy_record(l, i) else {
            continue;
        };
        if r.flagged == 0 {
            continue;
        }
        seq_print!(m, "superblock ");
        show_identity(m, &r);
        show_chain(m, &r);
        if r.resolved {
            seq_print!(
                m,
                " state=resolved stalled_ms={} flagged={} now={}",
                r.stalled / 1_000_000,
                Secs(r.flagged),
                r.state.name()
            );
        } else {
            seq_print!(
                m,
                " state=leaked stalled_ms={} flagged={}",
                now.saturating_sub(r.stall_start()) / 1_000_000,
                Secs(r.flagged)
            );
        }
        seq_print!(m, " s_active={}", r.s_active);
        show_mounts(m, &r);
        if r.mounts_exact {
            seq_print!(m, " unexplained={}", (r.s_active - r.mounts).max(0));
        }
        seq_print!(m, " releases={} acquires={}", r.n_releases, r.n_acquires);
        let holders = (!r.resolved
            && !matches!(r.state, State::Dying | State::ShutDown | State::Freed))
        .then(|| walk(r.sb, r.gen))
        .flatten();
        if let Some(h) = &holders {
            h.held_by(m);
        }
        seq_print!(m, "\n");
        for s in Iterator::chain(rel.iter(), acq.iter()).flatten() {
            show_site(m, s);
        }
        if let Some(h) = &holders {
            h.show(m);
        }
    }
    Ok(())
}

/// The busy part of `leaks`: superblocks an unmount or export was refused
/// for, with what held them: a mount in use is a real holder; a leaked
/// reference is not.  `walk` finds who holds one now (see [`show_leaks`]).
pub(crate) fn show_busy<H: HolderReport>(
    l: &Ledger,
    m: &SeqFile,
    walk: impl Fn(usize, u32) -> Option<H>,
) {
    for i in 0..slots(l) {
        let Some(r) = copy_bare(l, i) else {
            continue;
        };
        if r.busy_at == 0 || matches!(r.state, State::ShutDown | State::Freed) {
            continue;
        }
        let verdict = match r.state {
            State::Live => "real_holder:mounted_and_in_use",
            State::Pending => "real_holder:unmounted_but_files_open",
            State::Leaked | State::Detached => "leaked_reference",
            State::Held => "real_holder:held_without_mounts",
            State::Frozen => "real_holder:frozen",
            _ => "shutting_down",
        };
        seq_print!(m, "busy ");
        show_identity(m, &r);
        seq_print!(
            m,
            " refused={} last={} state={} s_active={}",
            r.busy_count,
            Secs(r.busy_at),
            r.state.name(),
            r.s_active
        );
        show_mounts(m, &r);
        seq_print!(m, " verdict={}", verdict);
        let holders = (r.state != State::Dying)
            .then(|| walk(r.sb, r.gen))
            .flatten();
        if let Some(h) = &holders {
            h.held_by(m);
        }
        seq_print!(m, "\n");
        if let Some(h) = &holders {
            h.show(m);
        }
    }
}

/// The stuck part of `leaks`: superblocks whose unmount (`kill_sb`) or
/// mount (`fill_super`) has not finished within the grace period.  Not a
/// leak: the task doing it is blocked, and `s_umount=held` says it holds
/// the superblock's lock while it is.
pub(crate) fn show_stuck(l: &Ledger, m: &SeqFile) {
    let now = now_ns();
    let grace = l.grace_ns();
    for i in 0..slots(l) {
        let Some(r) = copy_bare(l, i) else {
            continue;
        };
        let verdict = match r.state {
            State::Dying => "shutdown_not_finishing",
            State::Mounting => "mount_not_finishing",
            _ => continue,
        };
        let stuck = now.saturating_sub(r.state_since);
        if stuck < grace {
            continue;
        }
        seq_print!(m, "stuck ");
        show_identity(m, &r);
        seq_print!(
            m,
            " state={} stuck_ms={} s_active={} s_umount={} verdict={}\n",
            r.state.name(),
            stuck / 1_000_000,
            r.s_active,
            if r.umount_locked { "held" } else { "free" },
            verdict
        );
    }
}

/// Prints every event in the ring.
pub(crate) fn show_events(l: &Ledger, m: &SeqFile) -> Result {
    let (first, end) = {
        let inner = l.inner.lock();
        (inner.events.first(), inner.events.end())
    };
    seq_print!(
        m,
        "# capacity={} held={} dropped={}\n",
        events::MAX_EVENTS,
        end - first,
        first
    );
    // One event at a time, so probe handlers never wait long for the lock.
    // Events recorded meanwhile are left for the next read; one overwritten
    // meanwhile is skipped.
    for seq in first..end {
        let e = l.inner.lock().events.get(seq);
        if let Some(e) = e {
            events::show(m, &e);
        }
    }
    Ok(())
}
