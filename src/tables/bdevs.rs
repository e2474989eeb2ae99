// SPDX-License-Identifier: GPL-2.0

//! The block device ledger: opens and closes, by device and by opener.
//!
//! Since 6.9 a block device is opened as a `struct file` (`bdev_open`) and
//! closed when that file is released (`bdev_release`), so each open is keyed
//! by its file, and a close matches its open exactly.  The release can run
//! later than the code that dropped the file (a deferred `fput`), so a close
//! that has not happened yet is *pending*, not leaked: an exclusive open held
//! by a superblock that has shut down is flagged only once it outlives the
//! grace period.
//!
//! The handlers (`join::bdev_handlers`) record opens and closes without the
//! ledger's lock, since an open/close of a block device is a hot path (a
//! loop device's, or any `open(2)` of `/dev/sdX`): an open claims a slot
//! keyed by its file with a compare-and-swap and publishes what it read under
//! the slot's sequence count, a close clears the slot, and each device's
//! counters are atomics.  The lock is taken only for an open held by a
//! superblock (so that a superblock's shutdown, which marks its opens under
//! the lock, never marks another superblock's open that took a slot
//! meanwhile) and for a device's first record (its names).  Every close is
//! lock-free: a close that waited for the lock, and gave up, would leave its
//! open recorded, and an open held by a superblock that shut down is flagged
//! as leaked once the grace period is over.  A superblock holder is only an
//! address here, named by the joins that print it.

use crate::wrappers::{
    bindings,
    evidence::{module_name, symbol_name, Evidence, Name},
};
use core::{
    cell::UnsafeCell,
    ffi::c_void,
    mem::MaybeUninit,
    sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::prelude::*;

/// Block devices the ledger can hold.
pub(crate) const MAX_BDEVS: usize = 256;
/// Opens it can hold at once.
pub(crate) const MAX_OPENS: usize = 1024;
/// The most slots an open is looked for in, from its hash: a handler's bound.
const MAX_PROBE: usize = 32;
/// The most slots a handler looks for a device's record in, from its hash.
const DEV_PROBE: usize = 4;
/// Words of [`Table::held`], a bit per open slot.
const HELD_WORDS: usize = MAX_OPENS / 64;
// A bit per word in `Table::held_words`.
const _: () = assert!(MAX_OPENS % 64 == 0 && HELD_WORDS <= 64);
/// A device slot's key: the device number with this bit, so that device 0
/// is not taken for an unused slot.
const DEV_KEY: u64 = 1 << 32;

/// Who holds an exclusive open.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Not exclusive.
    #[default]
    None,
    /// A superblock (`fs_holder_ops`): a mounted filesystem.
    Superblock(usize),
    /// A static object with a symbol name: `_dm_claim_ptr` (dm), `claim_rdev`
    /// (md), `zfs_vdev_holder` (OpenZFS), ...
    Symbol(usize),
    /// Some other object, shown hashed.
    Object(usize),
}

/// One open of a block device, as read out of the table.
#[derive(Clone, Copy, Default)]
pub(crate) struct Open {
    pub(crate) used: bool,
    pub(crate) dev: u32,
    pub(crate) holder: Holder,
    /// When the superblock holding it shut down, or 0.
    pub(crate) holder_down: u64,
    pub(crate) ev: Evidence,
}

/// What an open's slot holds besides its key.
#[derive(Clone, Copy)]
struct OpenData {
    dev: u32,
    holder: Holder,
    ev: Evidence,
}

/// A slot's `file` while its claimer writes it: never a file's address
/// (those are aligned), nor 0 (free).
const BUSY: usize = 1;

/// The slot of one open.
///
/// # Invariants
///
/// `file` is 0 (free), [`BUSY`] or the address of the file whose open the
/// slot holds.  Only a compare-and-swap from 0 to `BUSY` claims a slot, and
/// only the claimer writes `data` (between two increments of `seq`) and
/// then stores the file: so `data` has one writer at a time, and nobody
/// writes it while `file` holds a file.  `file` goes back to 0 only by a
/// compare-and-swap from the file it holds (the file's close, or a reset),
/// never from `BUSY`.  Readers copy `data` only when `file` holds a file
/// and `seq` is even and unchanged around the copy, and discard the copy
/// otherwise.
struct OpenSlot {
    file: AtomicUsize,
    /// Odd while `data` is being written; moves on at every claim, so that
    /// a reader tells a slot reused by the same file pointer.
    seq: AtomicU32,
    /// Ever used since load: a lookup stops at the first never-used slot.
    /// Set before the slot is claimed and never cleared, so a lookup never
    /// stops short of an open recorded further on.
    probed: AtomicBool,
    /// When the superblock holding the open shut down, or 0.
    holder_down: AtomicU64,
    /// Whether the open is held by a superblock and was recorded with the
    /// lock held, so marked in [`Table::held`]: a shutdown reads it before
    /// it copies `data` ([`Table::holder_shut_down`]).
    held_by_sb: AtomicBool,
    data: UnsafeCell<OpenData>,
}

impl OpenSlot {
    fn new() -> Self {
        Self {
            file: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
            probed: AtomicBool::new(false),
            holder_down: AtomicU64::new(0),
            held_by_sb: AtomicBool::new(false),
            data: UnsafeCell::new(OpenData {
                dev: 0,
                holder: Holder::None,
                ev: Evidence::EMPTY,
            }),
        }
    }

    /// Claims the slot if it is free: the claim is what lets its holder
    /// write the slot ([`Claim::publish`]).
    fn claim(&self) -> Option<Claim<'_>> {
        // Marked before the claim: a lookup that passes this slot after
        // seeing it claimed sees it marked.
        self.probed.store(true, Ordering::Relaxed);
        self.file
            .compare_exchange(0, BUSY, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            // INVARIANT: This caller's compare-and-swap stored `BUSY`.
            .map(|_| Claim(self))
    }

    /// Frees the slot if it holds `file`: its close, or a reset.
    fn free(&self, file: usize) -> bool {
        file > BUSY
            && self
                .file
                .compare_exchange(file, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
    }

    /// A copy of the open, `used: false` if the slot is free, being written,
    /// or changed while it was copied.
    fn read(&self) -> Open {
        // Acquire: a file seen here was stored after its data, and after
        // the even count read next.
        let file = self.file.load(Ordering::Acquire);
        let s = self.seq.load(Ordering::Acquire);
        if file <= BUSY || s & 1 != 0 {
            return Open::default();
        }
        // SAFETY: This is a seqcount's read side: a concurrent writer
        // (after this file's close, a new claimer) is detected below and
        // the copy discarded.  The copy is taken as bytes, valid whatever
        // they are; it is read as `OpenData` only once found whole.
        let d =
            unsafe { core::ptr::read_volatile(self.data.get().cast::<MaybeUninit<OpenData>>()) };
        let down = self.holder_down.load(Ordering::Relaxed);
        let marked = self.held_by_sb.load(Ordering::Relaxed);
        // Orders the copy before the second reads, as `smp_rmb()` does in
        // `read_seqcount_retry`.
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s || self.file.load(Ordering::Relaxed) != file {
            return Open::default();
        }
        // SAFETY: Neither `file` nor `seq` changed around the copy, so no
        // writer ran meanwhile: it is one publish's `OpenData`, whole.
        let d = unsafe { d.assume_init() };
        Open {
            used: true,
            dev: d.dev,
            holder: d.holder,
            // Only a marked open's time is its own.  A shutdown that found
            // this slot's earlier open may store its time after the slot
            // was taken by an open recorded without the lock, which no
            // shutdown marks (see `Table::holder_shut_down`): read as its
            // own, that open would look held by a superblock shut down.
            holder_down: if marked { down } else { 0 },
            ev: d.ev,
        }
    }
}

/// A claimed open slot, whose data its holder alone may write.
///
/// # Invariants
///
/// The holder's compare-and-swap stored `BUSY` in the slot's `file`, and it
/// has not published since.
struct Claim<'a>(&'a OpenSlot);

impl Claim<'_> {
    /// Writes the open's device and holder, has `fill` write its evidence
    /// in place, and then stores `file`; `held` if the open is held by a
    /// superblock.  Written in place, not copied in: an [`Evidence`] is 88
    /// bytes, and on the path of every `open(2)` of a block device each
    /// copy of it was a `rep movsq` of eleven words.
    #[inline(always)]
    fn publish(
        self,
        file: usize,
        dev: u32,
        holder: Holder,
        fill: impl FnOnce(&mut Evidence),
        held: bool,
    ) {
        let slot = self.0;
        let s = slot.seq.load(Ordering::Relaxed);
        slot.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd count before the data, as `smp_wmb()` does in
        // `write_seqcount_begin`.
        fence(Ordering::Release);
        let d = slot.data.get();
        // SAFETY: The claim makes this the only writer of `data` (type
        // invariants; `OpenSlot`'s), as a seqcount's writer is: a reader
        // that copies meanwhile sees `seq` change and discards the copy.
        unsafe {
            (*d).dev = dev;
            (*d).holder = holder;
            fill(&mut (*d).ev);
        }
        slot.holder_down.store(0, Ordering::Relaxed);
        slot.held_by_sb.store(held, Ordering::Relaxed);
        slot.seq.store(s.wrapping_add(2), Ordering::Release);
        // INVARIANT: `data` is written; from now on only `file`'s close or a
        // reset frees the slot.
        slot.file.store(file, Ordering::Release);
    }
}

/// One block device, as read out of the table.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bdev {
    pub(crate) used: bool,
    pub(crate) dev: u32,
    pub(crate) name: Name<32>,
    pub(crate) disk_module: Name<32>,
    pub(crate) opens: u64,
    pub(crate) closes: u64,
    pub(crate) openers: i32,
    pub(crate) last_close: u64,
    /// Opens made before the ledger was loaded or reset, so not matched to
    /// a file: found by [`seed`], and counted down as unmatched closes of
    /// the device come.
    pub(crate) before: i32,
    /// Its exclusive holder when it was seeded.
    pub(crate) before_holder: Holder,
}

/// A device's names and seeded holder.
#[derive(Clone, Copy, Default)]
struct Names {
    name: Name<32>,
    disk_module: Name<32>,
    before_holder: Holder,
}

/// The slot of one block device.
///
/// # Invariants
///
/// `names` is only accessed with the ledger's lock held, which callers
/// prove with a reference to [`Locked`].  `key` is `DEV_KEY | dev` once the
/// record is made, 0 before; it and `owner` are written only with the lock
/// held.
pub(crate) struct DevSlot {
    key: AtomicU64,
    /// The driver's module when the names were taken (0: built in;
    /// `usize::MAX`: not read yet).
    owner: AtomicUsize,
    opens: AtomicU64,
    closes: AtomicU64,
    openers: AtomicI32,
    last_close: AtomicU64,
    before: AtomicI32,
    names: UnsafeCell<Names>,
}

impl DevSlot {
    fn new() -> Self {
        Self {
            key: AtomicU64::new(0),
            owner: AtomicUsize::new(0),
            opens: AtomicU64::new(0),
            closes: AtomicU64::new(0),
            openers: AtomicI32::new(0),
            last_close: AtomicU64::new(0),
            before: AtomicI32::new(0),
            names: UnsafeCell::new(Names::default()),
        }
    }

    /// Whether the record is `dev`'s, made for driver `owner`.
    #[inline(always)]
    fn is(&self, dev: u32, owner: usize) -> bool {
        self.key.load(Ordering::Acquire) == DEV_KEY | u64::from(dev)
            && self.owner.load(Ordering::Relaxed) == owner
    }

    /// Makes the record `dev`'s, with its counters at 0.
    fn make(&self, _locked: &mut Locked, dev: u32) {
        self.key.store(0, Ordering::Relaxed);
        self.opens.store(0, Ordering::Relaxed);
        self.closes.store(0, Ordering::Relaxed);
        self.openers.store(0, Ordering::Relaxed);
        self.last_close.store(0, Ordering::Relaxed);
        self.before.store(0, Ordering::Relaxed);
        // Names are read again by the next probed open.
        self.owner.store(usize::MAX, Ordering::Relaxed);
        // SAFETY: The lock is held (`_locked`; type invariants).
        unsafe { *self.names.get() = Names::default() };
        self.key.store(DEV_KEY | u64::from(dev), Ordering::Release);
    }

    /// An open of the device was recorded, leaving it `openers` openers.
    #[inline(always)]
    pub(crate) fn opened(&self, openers: i32) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.openers.store(openers, Ordering::Relaxed);
    }

    /// A close of the device at `now`, leaving it `openers` openers; `matched`
    /// if its open was recorded.
    #[inline(always)]
    pub(crate) fn closed(&self, matched: bool, openers: i32, now: u64) {
        if !matched {
            // The close of an open made before the ledger saw it, if any
            // are left.
            let _ = self
                .before
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (b > 0).then(|| b - 1)
                });
        }
        self.closes.fetch_add(1, Ordering::Relaxed);
        self.openers.store(openers, Ordering::Relaxed);
        self.last_close.store(now, Ordering::Relaxed);
    }

    /// A copy of the record.
    fn read(&self, _locked: &Locked) -> Bdev {
        let key = self.key.load(Ordering::Acquire);
        // SAFETY: The lock is held (`_locked`; type invariants).
        let n = unsafe { *self.names.get() };
        Bdev {
            used: key != 0,
            dev: key as u32,
            name: n.name,
            disk_module: n.disk_module,
            opens: self.opens.load(Ordering::Relaxed),
            closes: self.closes.load(Ordering::Relaxed),
            openers: self.openers.load(Ordering::Relaxed),
            last_close: self.last_close.load(Ordering::Relaxed),
            before: self.before.load(Ordering::Relaxed),
            before_holder: n.before_holder,
        }
    }
}

/// The block device ledger's part of the ledger's locked state: nothing but
/// the proof that the lock is held, for the [`Table`] methods that need it.
///
/// # Invariants
///
/// There is one, and only the ledger's lock holds it (see [`Locked::new`]),
/// so a reference to it proves the lock is held.
pub(crate) struct Locked {
    _proof: (),
}

impl Locked {
    /// The proof.
    ///
    /// # Safety
    ///
    /// Called once, for the ledger's locked state: the result must only
    /// ever be reached through the ledger's lock.
    pub(crate) unsafe fn new() -> Self {
        // INVARIANT: Per the safety contract.
        Self { _proof: () }
    }
}

/// The tables, shared by the handlers without the ledger's lock.
///
/// # Invariants
///
/// `devs` has `MAX_BDEVS` slots and `opens` `MAX_OPENS`, from [`Table::new`]
/// on: neither grows nor shrinks.
pub(crate) struct Table {
    devs: KVVec<DevSlot>,
    opens: KVVec<OpenSlot>,
    /// Opens not tracked because the table was full.
    dropped: AtomicU64,
    /// The device record found last: open/close churn is on one device at
    /// a time, so it is tried before the hash.
    last_dev: AtomicUsize,
    /// A bit per open slot that may hold an open held by a superblock,
    /// recorded with the lock held: set when one is recorded, cleared by a
    /// reset and by a shutdown that finds the slot holding none any more.
    /// A superblock's shutdown looks only at these slots.  Written only
    /// with the lock held (a close leaves its bit to the next shutdown), so
    /// atomics only because the table is shared.
    held: [AtomicU64; HELD_WORDS],
    /// A bit per word of `held` that has a bit set: most shutdowns (every
    /// filesystem without a block device) read only this.
    held_words: AtomicU64,
}

// SAFETY: Every field is atomic but the slots' `data` and `names`: the
// slots' invariants give `data` one writer at a time, whose racing readers
// discard what they copy (a seqcount), and `names` is only accessed with
// the ledger's lock held.
unsafe impl Sync for Table {}
// SAFETY: Nothing in the table is tied to a thread.
unsafe impl Send for Table {}

impl Table {
    /// Allocates the tables, empty.
    pub(crate) fn new() -> Result<Self> {
        let mut devs = KVVec::with_capacity(MAX_BDEVS, GFP_KERNEL)?;
        for _ in 0..MAX_BDEVS {
            devs.push(DevSlot::new(), GFP_KERNEL)?;
        }
        let mut opens = KVVec::with_capacity(MAX_OPENS, GFP_KERNEL)?;
        for _ in 0..MAX_OPENS {
            opens.push(OpenSlot::new(), GFP_KERNEL)?;
        }
        // INVARIANT: Both were filled to their caps just above.
        Ok(Self {
            devs,
            opens,
            dropped: AtomicU64::new(0),
            last_dev: AtomicUsize::new(0),
            held: [const { AtomicU64::new(0) }; HELD_WORDS],
            held_words: AtomicU64::new(0),
        })
    }

    /// Device slot `i` (modulo the cap), without a bounds check: the
    /// handlers index the slots on every open and close of a block device.
    #[inline(always)]
    fn dev_slot(&self, i: usize) -> &DevSlot {
        // SAFETY: `devs` has `MAX_BDEVS` slots (type invariants).
        unsafe { self.devs.get_unchecked(i % MAX_BDEVS) }
    }

    /// Open slot `i` (modulo the cap), without a bounds check, as
    /// [`Self::dev_slot`].
    #[inline(always)]
    fn open_slot(&self, i: usize) -> &OpenSlot {
        // SAFETY: `opens` has `MAX_OPENS` slots (type invariants).
        unsafe { self.opens.get_unchecked(i % MAX_OPENS) }
    }

    /// Forgets everything.  A reset is a moment, not a barrier, for the
    /// handlers that do not take the lock: one running meanwhile may still
    /// count into a device record it found before (remade since, perhaps
    /// for another device), and an open recorded between this and the
    /// seeding walk that follows (or being recorded now: a busy slot is
    /// left to its claimer) is kept, and also counted in its device's
    /// `before_load`, one too many until the next reset.
    pub(crate) fn clear(&self, _locked: &mut Locked) {
        for d in self.devs.iter() {
            d.key.store(0, Ordering::Release);
        }
        for o in self.opens.iter() {
            o.free(o.file.load(Ordering::Relaxed));
            o.holder_down.store(0, Ordering::Relaxed);
        }
        for w in &self.held {
            w.store(0, Ordering::Relaxed);
        }
        self.held_words.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }

    /// Opens not tracked because the table was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A copy of device record `i` (modulo the cap).
    pub(crate) fn dev_at(&self, locked: &Locked, i: usize) -> Bdev {
        self.dev_slot(i).read(locked)
    }

    /// A copy of open `j` (modulo the cap).
    pub(crate) fn open_at(&self, j: usize) -> Open {
        self.open_slot(j).read()
    }

    /// The record of device `dev`, if made.
    pub(crate) fn find_dev(&self, locked: &Locked, dev: u32) -> Option<Bdev> {
        self.dev_index(dev).map(|i| self.dev_slot(i).read(locked))
    }

    /// The slot of device `dev`'s record, if made: a scan of all of them.
    fn dev_index(&self, dev: u32) -> Option<usize> {
        let key = DEV_KEY | u64::from(dev);
        self.devs
            .iter()
            .position(|d| d.key.load(Ordering::Acquire) == key)
    }

    /// Merges what [`seed`] found: block devices open before load or reset,
    /// which no probe saw.  Their files are unknown, so each device keeps a
    /// count of them ([`Bdev::before`]) and its exclusive holder.
    pub(crate) fn merge_seed(&self, locked: &mut Locked, found: &[Seed]) {
        for f in found {
            let Some((i, new)) = self.dev_record(locked, f.dev) else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let d = self.dev_slot(i);
            if new {
                // SAFETY: The lock is held (`locked`; type invariants).
                // Named, but not matched by owner: the next probed open
                // reads the owner again.
                unsafe {
                    let n = &mut *d.names.get();
                    n.name = f.name;
                    n.disk_module = f.disk_module;
                }
            }
            d.openers.store(f.openers, Ordering::Relaxed);
            d.before.store(f.openers, Ordering::Relaxed);
            // SAFETY: As above.
            unsafe { (*d.names.get()).before_holder = f.holder };
        }
    }

    /// Superblock `sb` shut down: its exclusive opens should close now.
    ///
    /// Only slots marked in [`Self::held`] are looked at.  A slot found
    /// holding no marked open any more (closed, and free or taken by an open
    /// recorded without the lock) is unmarked: with the lock held, no marked
    /// open can be recorded meanwhile, so none loses its mark.  For the same
    /// reason, an open found held by `sb` here is replaced, before the time
    /// is stored, only by an open recorded without the lock, which no
    /// shutdown marks: the time stays there, unread (`OpenSlot::read` gives
    /// an unmarked open no shutdown time), until the slot's next claim.
    ///
    /// An open whose superblock already shut down keeps that time: a
    /// superblock shuts down once, and one made since at the same address
    /// is another, whose shutdown must not restart the open's grace period.
    pub(crate) fn holder_shut_down(&self, _locked: &Locked, sb: usize, now: u64) {
        let mut words = self.held_words.load(Ordering::Relaxed);
        while words != 0 {
            let w = words.trailing_zeros() as usize;
            words &= words - 1;
            let mut bits = self.held[w].load(Ordering::Relaxed);
            let mut kept = bits;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let o = self.open_slot(w * 64 + b);
                // Checked first, so that a slot reused by an unmarked open
                // is not copied.
                if !o.held_by_sb.load(Ordering::Relaxed) {
                    kept &= !(1 << b);
                    continue;
                }
                let r = o.read();
                if !r.used {
                    kept &= !(1 << b);
                } else if r.holder == Holder::Superblock(sb) && r.holder_down == 0 {
                    o.holder_down.store(now, Ordering::Relaxed);
                }
            }
            self.held[w].store(kept, Ordering::Relaxed);
            if kept == 0 {
                self.held_words.fetch_and(!(1 << w), Ordering::Relaxed);
            }
        }
    }

    /// The first slot of device `dev`'s lookup.
    #[inline(always)]
    fn dev_hash(dev: u32) -> usize {
        (u64::from(dev).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % MAX_BDEVS
    }

    /// The record of the device `info` describes, if made for its current
    /// driver, found without the lock: the one found last, else within
    /// [`DEV_PROBE`] slots of the device's hash, where [`Self::dev_slow`]
    /// puts it if it can.
    #[inline(always)]
    pub(crate) fn dev(&self, info: &BdevInfo) -> Option<&DevSlot> {
        let d = self.dev_slot(self.last_dev.load(Ordering::Relaxed));
        if d.is(info.dev, info.owner as usize) {
            return Some(d);
        }
        self.dev_hashed(info)
    }

    #[inline(never)]
    fn dev_hashed(&self, info: &BdevInfo) -> Option<&DevSlot> {
        let mut i = Self::dev_hash(info.dev);
        for _ in 0..DEV_PROBE {
            let d = self.dev_slot(i);
            if d.is(info.dev, info.owner as usize) {
                self.last_dev.store(i, Ordering::Relaxed);
                return Some(d);
            }
            i = (i + 1) % MAX_BDEVS;
        }
        None
    }

    /// The slot of device `dev`'s record, and whether it was made now: in
    /// the first free slot from the device's hash, where [`Self::dev`] looks
    /// first.  None if the table is full.
    fn dev_record(&self, locked: &mut Locked, dev: u32) -> Option<(usize, bool)> {
        if let Some(i) = self.dev_index(dev) {
            return Some((i, false));
        }
        let h = Self::dev_hash(dev);
        let i = (0..MAX_BDEVS)
            .map(|k| (h + k) % MAX_BDEVS)
            .find(|&i| self.dev_slot(i).key.load(Ordering::Acquire) == 0)?;
        self.dev_slot(i).make(locked, dev);
        Some((i, true))
    }

    /// The record of the device `info` describes, made if needed
    /// ([`Self::dev_record`]), under the lock.  Its names are taken when it
    /// is made, and again if the device number now belongs to another
    /// driver (dynamic majors are reused).
    #[inline(never)]
    pub(crate) fn dev_slow(&self, locked: &mut Locked, info: &BdevInfo) -> Option<&DevSlot> {
        let (i, _) = self.dev_record(locked, info.dev)?;
        let d = self.dev_slot(i);
        if d.owner.load(Ordering::Relaxed) != info.owner as usize {
            let mut name = [0u8; 32];
            // SAFETY: `info.bdev` is open and its driver's module live (see
            // `BdevInfo::read`); formatting the name does not sleep.  The
            // lock is held (`locked`; type invariants).
            unsafe {
                let module = module_name(info.owner);
                bindings::rl_bdev_name(name.as_mut_ptr().cast(), name.len(), info.bdev);
                let n = &mut *d.names.get();
                n.disk_module = module;
                n.name = Name::from_bytes(&name);
            }
            d.owner.store(info.owner as usize, Ordering::Relaxed);
        }
        self.last_dev.store(i, Ordering::Relaxed);
        Some(d)
    }

    /// The first slot of `file`'s lookup.
    #[inline(always)]
    fn hash(file: usize) -> usize {
        ((file as u64 >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % MAX_OPENS
    }

    /// Records an open of `file`: claims a free slot, looking at most
    /// [`MAX_PROBE`] slots from the file's hash, so that a handler's work is
    /// bounded however full the table is, and counts a drop if none is
    /// free.  `fill` writes the open's evidence into the slot it claimed.
    /// An open held by a superblock is recorded with the lock held (`held`),
    /// and its slot marked for the superblock's shutdown.  Inlined into the
    /// one handler that calls it, with `fill`.
    #[inline(always)]
    pub(crate) fn record_open(
        &self,
        held: Option<&Locked>,
        file: usize,
        dev: u32,
        holder: Holder,
        fill: impl FnOnce(&mut Evidence),
    ) {
        // Not a file's address: the kernel never passes one, and a slot
        // holding it would read as free or busy.
        if file <= BUSY {
            return;
        }
        let mut i = Self::hash(file);
        for _ in 0..MAX_PROBE {
            let o = self.open_slot(i);
            // Acquire: a slot seen claimed is seen marked, and so is it by
            // a lookup that comes after this open.
            if o.file.load(Ordering::Acquire) == 0 {
                if let Some(claim) = o.claim() {
                    claim.publish(file, dev, holder, fill, held.is_some());
                    if held.is_some() {
                        self.held[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
                        self.held_words.fetch_or(1 << (i / 64), Ordering::Relaxed);
                    }
                    return;
                }
            }
            i = (i + 1) % MAX_OPENS;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The slot of the open of `file`, if recorded.  An open is only ever
    /// recorded within [`MAX_PROBE`] slots of its hash, and a lookup stops
    /// at the first never-used slot.
    fn find_open(&self, file: usize) -> Option<usize> {
        let mut i = Self::hash(file);
        for _ in 0..MAX_PROBE {
            let o = self.open_slot(i);
            if o.file.load(Ordering::Acquire) == file {
                return Some(i);
            }
            if !o.probed.load(Ordering::Relaxed) {
                return None;
            }
            i = (i + 1) % MAX_OPENS;
        }
        None
    }

    /// Records the close of `file`: true if its open was recorded (not
    /// made before load or reset, nor dropped).  Without the lock, whoever
    /// holds the open: a superblock's shutdown that finds the slot free, or
    /// taken by an open recorded without the lock, unmarks it.
    pub(crate) fn record_close(&self, file: usize) -> bool {
        self.find_open(file)
            .is_some_and(|i| self.open_slot(i).free(file))
    }
}

/// A block device found open by [`seed`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Seed {
    pub(crate) dev: u32,
    pub(crate) openers: i32,
    pub(crate) name: Name<32>,
    pub(crate) disk_module: Name<32>,
    pub(crate) holder: Holder,
}

/// Where [`seed_one`] collects what it finds.
struct SeedWalk<'a> {
    pub(crate) found: &'a mut KVVec<Seed>,
    pub(crate) dropped: u64,
}

/// Finds the block devices open now, from the kernel's own state, without
/// the ledger's lock (the walk takes the bdev filesystem's spinlocks; see
/// `rl_for_each_open_bdev`), for [`Table::merge_seed`].  Process context.
pub(crate) fn seed() -> Result<KVVec<Seed>> {
    let mut found = KVVec::with_capacity(MAX_BDEVS, GFP_KERNEL)?;
    let mut walk = SeedWalk {
        found: &mut found,
        dropped: 0,
    };
    // SAFETY: `seed_one` matches the callback type; `walk` outlives the walk.
    unsafe {
        bindings::rl_for_each_open_bdev(Some(seed_one), core::ptr::from_mut(&mut walk).cast())
    };
    if walk.dropped > 0 {
        pr_info!(
            "{} open block devices beyond {} not seeded\n",
            walk.dropped,
            MAX_BDEVS
        );
    }
    Ok(found)
}

/// # Safety
///
/// Called by `rl_for_each_open_bdev` with the bdev filesystem's
/// `s_inode_list_lock` and `bdev`'s inode's `i_lock` held, the inode not
/// being set up or freed, and `bd_openers` seen above zero; `arg` is the
/// [`SeedWalk`] that [`seed`] passed.
unsafe extern "C" fn seed_one(
    bdev: *mut bindings::block_device,
    holder: *mut c_void,
    hops: *const bindings::blk_holder_ops,
    arg: *mut c_void,
) {
    // SAFETY: `arg` is the walk state, borrowed mutably by `seed`.
    let w = unsafe { &mut *arg.cast::<SeedWalk<'_>>() };
    if w.found.len() == w.found.capacity() {
        w.dropped += 1;
        return;
    }
    let mut name = [0u8; 32];
    // SAFETY: The block device is embedded in its inode, which stays
    // allocated while listed on the bdev superblock's inodes under
    // `s_inode_list_lock` (eviction unlinks it under that lock first).  Its
    // disk is freed by `bdev_free_inode`, RCU-delayed, and the spinlocks
    // held make this an RCU read-side section.  "%pg" reads only the disk's
    // name and the partition number.  The driver's module: every open holds
    // a reference to it (`blkdev_get_no_open`), and `bd_openers` was above
    // zero when the walk read it, before this; a close since may have
    // dropped it, but a module's memory is freed only after
    // `synchronize_rcu()` (`free_module`), which cannot end meanwhile.
    let seed = unsafe {
        bindings::rl_bdev_name(name.as_mut_ptr().cast(), name.len(), bdev);
        let disk = (*bdev).bd_disk;
        let owner = if disk.is_null() || (*disk).fops.is_null() {
            core::ptr::null_mut()
        } else {
            (*(*disk).fops).owner
        };
        Seed {
            dev: (*bdev).bd_dev,
            openers: core::ptr::read_volatile(&raw const (*bdev).bd_openers.counter),
            name: Name::from_bytes(&name),
            disk_module: module_name(owner),
            holder: classify(holder as usize, hops as usize),
        }
    };
    // Capacity was checked above: this does not allocate.
    let _ = w.found.push(seed, GFP_ATOMIC);
}

/// What can be read of an open block device without locks.
pub(crate) struct BdevInfo {
    pub(crate) bdev: *mut bindings::block_device,
    pub(crate) dev: u32,
    /// The disk driver's module, named only when a device record is made.
    pub(crate) owner: *mut bindings::module,
    pub(crate) openers: i32,
}

impl BdevInfo {
    /// # Safety
    ///
    /// `bdev` must be a block device the caller holds open or is opening.
    pub(crate) unsafe fn read(bdev: *mut bindings::block_device) -> Self {
        // SAFETY: `bdev` is live per the safety contract; its disk and the
        // disk's fops stay while it is open.
        unsafe {
            let disk = (*bdev).bd_disk;
            let owner = if disk.is_null() || (*disk).fops.is_null() {
                core::ptr::null_mut()
            } else {
                (*(*disk).fops).owner
            };
            Self {
                bdev,
                dev: (*bdev).bd_dev,
                owner,
                openers: core::ptr::read_volatile(&raw const (*bdev).bd_openers.counter),
            }
        }
    }
}

pub(crate) fn classify(holder: usize, hops: usize) -> Holder {
    if holder == 0 {
        return Holder::None;
    }
    // Only the address of the exported `fs_holder_ops` is taken.
    let fs_ops = &raw const bindings::fs_holder_ops as usize;
    if hops == fs_ops {
        return Holder::Superblock(holder);
    }
    let mut buf = [0u8; 64];
    if symbol_name(holder, &mut buf).starts_with(b"0x") {
        Holder::Object(holder)
    } else {
        Holder::Symbol(holder)
    }
}
