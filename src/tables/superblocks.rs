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
//! This file is the table only: records, their evidence and the rules that
//! move a record from state to state ([`evaluate`], [`flag`]).  It takes
//! snapshots of kernel objects and evidence, and returns events and
//! transitions; it knows neither the other tables nor the global ledger.
//! The probe handlers that feed it are `join::sb_handlers`; the audit that
//! reconciles it with the kernel's own list of superblocks, and decides
//! leaks, is `join::audit`.

use crate::{
    tables::events::{Event, Kind, Ring},
    wrappers::{
        bindings,
        evidence::{module_name, Comm, Evidence, Name},
    },
};
use kernel::prelude::*;

/// The most superblocks tracked at once.
pub(crate) const MAX_SBS: usize = 12288;
/// Slots of the pointer index: a power of two, at most half full.
const INDEX_SIZE: usize = 32768;
/// Release and acquisition evidence kept per superblock (the most recent).
pub(crate) const SITES_PER_SB: usize = 4;
/// Evidence records shared by all superblocks.
pub(crate) const MAX_SITES: usize = 4096;
/// Freed superblocks kept for display, oldest forgotten first.
const KEEP_FREED: usize = 256;
/// Freed superblocks that had been flagged, kept as `resolved`.
const KEEP_RESOLVED: usize = 256;

/// The most filesystem types an audit remembers walking; with more, records
/// of types beyond them are never taken for freed.
pub(crate) const MAX_TYPES: usize = 512;

pub(crate) const EMPTY: u32 = 0;

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
    /// Whether a record in this state can move on with no probe firing, so
    /// that only an audit's walk sees it do so: a grace period running out
    /// (`Detached`), a holder going away (`Held`), a filesystem done filling
    /// in a superblock (`Mounting`), or a thaw that leaves references
    /// without mounts (`Frozen`).  Every other state is left by a call that
    /// a probe sees: a mount, a release, a shutdown.
    pub(crate) fn awaits_audit(self) -> bool {
        matches!(
            self,
            State::Mounting | State::Frozen | State::Detached | State::Held
        )
    }

    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) n: u64,
}

impl SiteRing {
    pub(crate) fn push(&mut self, id: u64) {
        self.ids[(self.n % SITES_PER_SB as u64) as usize] = id;
        self.n += 1;
    }

    /// Ids held, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let held = self.n.min(SITES_PER_SB as u64);
        (self.n - held..self.n).map(move |i| self.ids[(i % SITES_PER_SB as u64) as usize])
    }
}

/// A reference taken or dropped, with its evidence.
#[derive(Clone, Copy, Default)]
pub(crate) struct Site {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) s_active: i32,
    pub(crate) ev: Evidence,
}

/// How many entries `sb->s_mounts` has, as far as two pointer reads tell.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountList {
    Empty,
    One,
    Many,
}

/// What names a superblock and the chain it is read along; fixed for its
/// life, read once.
#[derive(Clone, Copy, Default)]
pub(crate) struct Identity {
    pub(crate) fstype: Name<16>,
    pub(crate) s_id: Name<32>,
    pub(crate) dev: u32,
    /// Its `s_type`, compared with the types an audit walked.
    pub(crate) s_type: usize,
    /// The block device it is on (`s_bdev`), or 0.
    pub(crate) bdev: u32,
    /// The module of its filesystem type, or `builtin`.
    pub(crate) fs_module: Name<32>,
    /// The module of its block device's driver, or `builtin`; empty when
    /// there is no block device.
    pub(crate) disk_module: Name<32>,
}

/// What changes in a live superblock and can be read without locks.
#[derive(Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) s_active: i32,
    pub(crate) list: MountList,
    /// Frozen (`s_writers.frozen` set): the freeze holds a reference.
    pub(crate) frozen: bool,
}

impl Snapshot {
    /// Reads `sb`.
    ///
    /// # Safety
    ///
    /// `sb` must point to a superblock that stays allocated during the call:
    /// the caller holds a reference, or `sb_lock` with `sb` listed.
    pub(crate) unsafe fn read(sb: usize) -> Self {
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
    pub(crate) unsafe fn read(sb: usize, builtin: &mut BuiltinTypes) -> Self {
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
            let (fstype, fs_module) = type_names(ty, builtin);
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
                ((*bdev).bd_dev, module_name(owner))
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
unsafe fn type_names(
    ty: *mut bindings::file_system_type,
    builtin: &mut BuiltinTypes,
) -> (Name<16>, Name<32>) {
    if ty.is_null() {
        return (Name::default(), Name::default());
    }
    // SAFETY: Per the safety contract; `name` is a C string.
    unsafe {
        let owner = (*ty).owner;
        if owner.is_null() {
            const BUILTIN: Name<32> = Name::literal(b"builtin");
            return (builtin.fstype(ty), BUILTIN);
        }
        (Name::from_c((*ty).name), module_name(owner))
    }
}

/// The names of the built-in filesystem types whose superblocks were read
/// last (tmpfs, proc, ...), so that a new record of one does not copy its
/// name byte by byte (on a tmpfs mount and unmount, reading a new record's
/// names took 238 of the 4,296 instructions refledger added).  A built-in type
/// (no `owner`) is never freed, so its address and name pointer always
/// mean the same name; a module's type is read every time, since another
/// module's can come at its address.  Direct-mapped by address.
#[derive(Default)]
pub(crate) struct BuiltinTypes([(usize, usize, Name<16>); 4]);

impl BuiltinTypes {
    /// The name of built-in type `ty`.
    ///
    /// # Safety
    ///
    /// `ty` is a built-in filesystem type (its `owner` is NULL).
    unsafe fn fstype(&mut self, ty: *mut bindings::file_system_type) -> Name<16> {
        // SAFETY: A built-in type is static (the safety contract).
        let name = unsafe { (*ty).name };
        let e = &mut self.0[(ty as usize >> 6) % 4];
        if e.0 != ty as usize || e.1 != name as usize {
            // SAFETY: `name` is the type's C string, static as it is.
            *e = (ty as usize, name as usize, unsafe { Name::from_c(name) });
        }
        e.2
    }
}

impl Identity {
    /// [`Identity::read_listed`] when `listed`, else [`Identity::read`].
    ///
    /// # Safety
    ///
    /// As for [`Identity::read_listed`] when `listed`, else as for
    /// [`Identity::read`].
    #[inline(always)]
    unsafe fn read_for(sb: usize, listed: bool, builtin: &mut BuiltinTypes) -> Self {
        // SAFETY: Per the safety contract.
        unsafe {
            if listed {
                Self::read_listed(sb, builtin)
            } else {
                Self::read(sb, builtin)
            }
        }
    }

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
    unsafe fn read_listed(sb: usize, builtin: &mut BuiltinTypes) -> Self {
        let sb = sb as *mut bindings::super_block;
        // SAFETY: `sb` is allocated while listed under `sb_lock`.  `s_type`
        // is set before a superblock is listed and pinned (with its module)
        // by it.  `s_id` is a fixed array; a racing write to it by a mount
        // in progress can only tear the copy, which `Name` cleans.  `s_bdev`
        // is only compared with NULL.
        unsafe {
            let ty = (*sb).s_type;
            let (fstype, fs_module) = type_names(ty, builtin);
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
    pub(crate) used: bool,
    pub(crate) sb: usize,
    pub(crate) id: Identity,
    pub(crate) state: State,
    pub(crate) state_since: u64,
    pub(crate) s_active: i32,
    pub(crate) has_mounts: bool,
    /// Struct mounts: those seen created, less those seen released, set
    /// from `s_mounts` whenever it is empty or has one entry.
    pub(crate) mounts: i32,
    /// Whether `mounts` is a full count rather than a lower bound.
    pub(crate) mounts_exact: bool,
    /// Mounts unmounted by umount(2) whose struct mount still exists.
    pub(crate) unmounted: i32,
    pub(crate) first_seen: u64,
    pub(crate) last_umount: u64,
    pub(crate) no_mounts_since: u64,
    pub(crate) shutdown: u64,
    pub(crate) freed: u64,
    pub(crate) flagged: u64,
    pub(crate) resolved: bool,
    pub(crate) stalled: u64,
    pub(crate) releases: SiteRing,
    pub(crate) acquires: SiteRing,
    /// Releases and acquisitions seen.  These and the other counts of a
    /// record that only grow (`busy_count`, `mounts`, `unmounted`) saturate:
    /// a root filesystem's can pass 2^32 in weeks of container churn, and an
    /// overflow check that fired in a handler would panic with the lock held.
    pub(crate) n_releases: u32,
    pub(crate) n_acquires: u32,
    /// When an unmount or export was last refused while it existed, or 0.
    pub(crate) busy_at: u64,
    pub(crate) busy_count: u32,
    /// The last walk that listed it ([`Table::start_walk`]), 0 for none.
    pub(crate) seen: u32,
    /// `SB_BORN` set: filled in by its filesystem.  Records made by probes
    /// are of born superblocks; the audit may list one that is not.
    pub(crate) born: bool,
    /// Frozen when last read.
    pub(crate) frozen: bool,
    /// `s_umount` held by someone when last audited (an unmount or
    /// remount in progress, or one stuck).
    pub(crate) umount_locked: bool,
    /// What `%p` prints for `sb`, filled in by the audit (0 until then):
    /// a read of 10,000 lines spent a sixth of its time in `vsnprintf`.
    pub(crate) hid: u64,
    /// Which record this is, counted from 1 while the module is loaded:
    /// printed after the hash (`sb=HASH.GEN`), it tells apart superblocks
    /// that had the same address one after the other.
    pub(crate) gen: u32,
}

impl Record {
    /// When the stall of a flagged superblock began: when its last mount
    /// went, or, for one flagged while still mounted (a ZFS hold that kept
    /// its reference), when it was flagged.
    pub(crate) fn stall_start(&self) -> u64 {
        if self.no_mounts_since != 0 {
            self.no_mounts_since
        } else {
            self.flagged
        }
    }

    /// Resolves a flagged record that is not resolved yet: its superblock
    /// shut down or is gone.  Returns whether it did, for the caller's
    /// `resolved` event.
    pub(crate) fn resolve(&mut self, now: u64) -> bool {
        let resolved = self.flagged != 0 && !self.resolved;
        if resolved {
            self.resolved = true;
            self.stalled = now.saturating_sub(self.stall_start());
        }
        resolved
    }

    pub(crate) fn set_state(&mut self, s: State, now: u64) {
        if self.state != s {
            self.state = s;
            self.state_since = now;
        }
    }

    /// Takes in what a snapshot says about mounts and `s_active`.
    pub(crate) fn apply(&mut self, snap: &Snapshot) {
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

    /// The record's event of `kind` at `now`, with the call's evidence if
    /// any and `s_active` as it was.
    pub(crate) fn event(
        &self,
        kind: Kind,
        now: u64,
        ev: Option<&Evidence>,
        s_active: i32,
    ) -> Event {
        let mut e = Event::default();
        self.write_event(&mut e, kind, now, ev, s_active);
        e
    }

    /// Records [`Record::event`] in `events`, written in place.
    #[inline(always)]
    pub(crate) fn push_event(
        &self,
        events: &mut Ring,
        kind: Kind,
        now: u64,
        ev: Option<&Evidence>,
        s_active: i32,
    ) {
        events.push_with(|e| self.write_event(e, kind, now, ev, s_active));
    }

    /// Writes every field of `e` (the pattern names them all, so a field
    /// added to [`Event`] fails the build here until it is written).
    #[inline(always)]
    fn write_event(
        &self,
        e: &mut Event,
        kind: Kind,
        now: u64,
        ev: Option<&Evidence>,
        s_active: i32,
    ) {
        let Event {
            time,
            kind: e_kind,
            sb,
            gen,
            fstype,
            s_id,
            s_active: e_s_active,
            caller,
            pid,
            comm,
        } = e;
        *time = now;
        *e_kind = kind;
        *sb = self.sb;
        *gen = self.gen;
        *fstype = self.id.fstype;
        *s_id = self.id.s_id;
        *e_s_active = s_active;
        *caller = ev.map_or(0, |e| e.caller);
        *pid = ev.map_or(0, |e| e.pid);
        *comm = ev.map_or(Comm::EMPTY, |e| e.comm);
    }
}

/// A leak flag or its resolution, found while evaluating a record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Leak,
    Resolved,
    /// Past the grace period with no mounts: a leak unless a holder
    /// explains every reference, which only the audit can tell (a holder
    /// walk, in process context); handlers leave it to the audit.
    Suspect,
}

/// Moves a record to the state its facts say, applying the grace period.
pub(crate) fn evaluate(r: &mut Record, now: u64, grace: u64) -> Option<Transition> {
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
pub(crate) fn flag(r: &mut Record, now: u64) -> Transition {
    r.flagged = now;
    r.resolved = false;
    r.set_state(State::Leaked, now);
    Transition::Leak
}

/// A first-in first-out list of record slots.
pub(crate) struct Fifo {
    pub(crate) slots: KVVec<u32>,
    head: usize,
    pub(crate) len: usize,
}

impl Fifo {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            slots: KVVec::from_elem(0, MAX_SBS, GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    pub(crate) fn push(&mut self, v: u32) {
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
    pub(crate) recs: KVVec<Record>,
    index: KVVec<u32>,
    pub(crate) free: KVVec<u32>,
    nfree: usize,
    pub(crate) freed: Fifo,
    pub(crate) resolved: Fifo,
    pub(crate) sites: KVVec<Site>,
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
    /// Set when a record enters a state that only a walk sees it leave
    /// ([`State::awaits_audit`]), or is left for the next walk to retire;
    /// cleared when a walk starts.
    unsettled: bool,
    /// Records shut down since the last walk started: each stays until a
    /// walk finds its superblock gone.
    shut_down: usize,
    /// Records made since the last walk started: a walk fills in their
    /// `hid`, which reads would otherwise hash, all at once.
    made: usize,
    /// The walks started, counted from 1 (wrapping past 0).
    walk: u32,
    /// Names of built-in filesystem types read for new records.
    builtin: BuiltinTypes,
}

pub(crate) fn hash(sb: usize) -> usize {
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
            unsettled: false,
            shut_down: 0,
            made: 0,
            walk: 0,
            builtin: BuiltinTypes::default(),
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
        self.unsettled = false;
        self.shut_down = 0;
        self.made = 0;
    }

    /// Starts a walk: returns its number, which [`Record::seen`] takes for
    /// each record the walk lists, and forgets what called for it.
    pub(crate) fn start_walk(&mut self) -> u32 {
        self.unsettled = false;
        self.shut_down = 0;
        self.made = 0;
        self.walk = self.walk.wrapping_add(1).max(1);
        self.walk
    }

    /// Whether a walk may find anything that probes have not told (a
    /// record in a state only a walk sees it leave), or has more than
    /// `backlog` records to tidy: of superblocks shut down and not yet
    /// found gone, or made and not yet given their `hid`.
    pub(crate) fn walk_due(&self, backlog: usize) -> bool {
        self.unsettled || self.shut_down > backlog || self.made > backlog
    }

    /// Has the next walk come back to the records, as for a record whose
    /// superblock is missing from the list and is retired if it is still
    /// missing then.
    pub(crate) fn unsettle(&mut self) {
        self.unsettled = true;
    }

    /// Whether `sb` has a record of a superblock not shut down: one that
    /// probes or a walk saw alive at that address, and that no shutdown
    /// since says was freed (after which the address may be a new one's).
    pub(crate) fn live_at(&self, sb: usize) -> bool {
        self.find(sb).is_some_and(|i| {
            // A freed record is never in the index.
            !matches!(self.recs[i].state, State::ShutDown | State::Dying)
        })
    }

    /// [`evaluate`] for record `i`, noting a state that only a walk sees
    /// the record leave.
    pub(crate) fn evaluate(&mut self, i: usize, now: u64, grace: u64) -> Option<Transition> {
        let r = &mut self.recs[i];
        let t = evaluate(r, now, grace);
        self.unsettled |= r.state.awaits_audit();
        t
    }

    /// Moves record `i` to `s`, noting a state that only a walk sees it
    /// leave.
    pub(crate) fn set_state(&mut self, i: usize, s: State, now: u64) {
        self.recs[i].set_state(s, now);
        self.unsettled |= s.awaits_audit();
    }

    /// Record `i`'s superblock is being shut down (`generic_shutdown_super`
    /// ran): its `s_active` is 0, and it is retired once a walk finds it
    /// gone.
    pub(crate) fn shut_down(&mut self, i: usize, now: u64) {
        let r = &mut self.recs[i];
        r.shutdown = now;
        r.s_active = 0;
        r.set_state(State::ShutDown, now);
        self.shut_down += 1;
    }

    /// Superblocks tracked now.
    pub(crate) fn tracked(&self) -> usize {
        MAX_SBS - self.nfree
    }

    /// How many slots from 0 a walk of the records must visit.
    pub(crate) fn slots(&self) -> usize {
        self.hwm
    }

    pub(crate) fn find(&self, sb: usize) -> Option<usize> {
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
    /// within the `KEEP_*` limits.  A flagged record not resolved yet is
    /// resolved now: its superblock is gone, whether or not a probe saw its
    /// shutdown (a handler that gave up the lock, or a missed hit, would
    /// otherwise leave it shown as leaked until 256 more were retired).
    /// Returns whether it resolved one, for a caller that keeps events.
    pub(crate) fn retire(&mut self, slot: usize, now: u64) -> bool {
        // Freed first: a rebuild inside `index_remove` must not put it back.
        let r = &mut self.recs[slot];
        r.set_state(State::Freed, now);
        r.freed = now;
        let resolved = r.resolve(now);
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
        resolved
    }

    /// The record of `sb`, made if there is none.  `alive` says the caller
    /// just saw `sb` mounted or listed with references, or holds one, so a
    /// `ShutDown` record for the same address belongs to an earlier
    /// superblock that was freed and whose memory was reused.  Returns the slot and whether it is new, or `None`
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
    pub(crate) unsafe fn get(
        &mut self,
        sb: usize,
        snap: &Snapshot,
        alive: bool,
        listed: bool,
        now: u64,
    ) -> Option<(usize, bool)> {
        if let Some(i) = self.find(sb) {
            // Only a record shut down is stale.  One dying is not: a release
            // handler marks the last reference dropped before the kernel
            // drops it, after `s_umount` is taken, which a sync may hold for
            // long; an audit meanwhile lists the superblock alive.  (If a
            // shutdown's hit is given up or missed, the record stays dying
            // and a new superblock at its address takes it over until a
            // walk finds it gone.)
            if !(alive && self.recs[i].state == State::ShutDown) {
                if !listed && (self.recs[i].id.disk_module.is(b"?") || !self.recs[i].born) {
                    // Made by the audit, which does not follow `s_bdev`, or
                    // which listed it before its filesystem filled it in
                    // (no block device yet, `s_id` still the type's name);
                    // this caller holds a reference and may read it all.
                    // SAFETY: `sb` is live per the safety contract.
                    unsafe { self.refresh_identity(i, false) };
                }
                return Some((i, false));
            }
            // No walk needs to find this one gone now.  It may have been
            // counted before the last walk started, when the count was
            // cleared: then this undercounts by one, and the walk that the
            // count calls for comes a little later.
            self.shut_down = self.shut_down.saturating_sub(1);
            // A record shut down was resolved by its shutdown, if flagged.
            self.retire(i, now);
        }
        let Some(i) = self.alloc_slot() else {
            self.dropped += 1;
            return None;
        };
        self.last_gen = self.last_gen.wrapping_add(1).max(1);
        self.made += 1;
        self.recs[i] = Record {
            used: true,
            sb,
            gen: self.last_gen,
            // SAFETY: `sb` is live per the safety contract, and listed
            // under `sb_lock` when `listed`.
            id: unsafe { Identity::read_for(sb, listed, &mut self.builtin) },
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

    /// Reads record `i`'s identity again: with [`Identity::read_listed`]
    /// when `listed`, else with [`Identity::read`].
    ///
    /// # Safety
    ///
    /// As for [`Table::get`], for the record's superblock.
    pub(crate) unsafe fn refresh_identity(&mut self, i: usize, listed: bool) {
        let sb = self.recs[i].sb;
        // SAFETY: Per the safety contract.
        self.recs[i].id = unsafe { Identity::read_for(sb, listed, &mut self.builtin) };
    }

    pub(crate) fn push_site(&mut self, kind: Kind, s_active: i32, ev: &Evidence) -> u64 {
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
        r.n_acquires = r.n_acquires.saturating_add(1);
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
        r.busy_count = r.busy_count.saturating_add(1);
        Some(r.event(kind, now, Some(ev), r.s_active))
    }

    pub(crate) fn site(&self, id: u64) -> Option<Site> {
        let s = self.sites[(id % MAX_SITES as u64) as usize];
        (s.id == id && id != 0).then_some(s)
    }
}
