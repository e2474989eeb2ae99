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
//! The table records what the handlers (`join::bdev_handlers`) read at
//! open and release; a superblock holder is only an address here, named
//! by the joins that print it.

use crate::wrappers::{
    bindings,
    evidence::{module_name, symbol_name, Evidence, Name},
};
use core::ffi::c_void;
use kernel::prelude::*;

/// Block devices the ledger can hold.
pub(crate) const MAX_BDEVS: usize = 256;
/// Opens it can hold at once.
pub(crate) const MAX_OPENS: usize = 1024;
/// The most slots an open is looked for in, from its hash: a handler's bound.
const MAX_PROBE: usize = 32;
/// Opens held by superblocks that a superblock's shutdown finds without a
/// scan of all opens.
const MAX_SB_HELD: usize = 64;
// Open slots are kept as `u16` in that list.
const _: () = assert!(MAX_OPENS <= 1 << 16);

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

/// One open of a block device.
#[derive(Clone, Copy, Default)]
pub(crate) struct Open {
    pub(crate) used: bool,
    /// Ever used since the last reset (see `Table::open_slot`).
    pub(crate) probed: bool,
    pub(crate) file: usize,
    pub(crate) dev: u32,
    pub(crate) holder: Holder,
    /// When the superblock holding it shut down, or 0.
    pub(crate) holder_down: u64,
    pub(crate) ev: Evidence,
}

/// One block device.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bdev {
    pub(crate) used: bool,
    pub(crate) dev: u32,
    pub(crate) name: Name<32>,
    pub(crate) disk_module: Name<32>,
    /// The driver's module when the names were taken (0: built in).
    pub(crate) owner: usize,
    pub(crate) opens: u64,
    pub(crate) closes: u64,
    pub(crate) openers: i32,
    pub(crate) last_close: u64,
    /// Opens made before the ledger was loaded or reset, so not matched to
    /// a file: found by [`Table::seed`], and counted down as unmatched
    /// closes of the device come.
    pub(crate) before: i32,
    /// Its exclusive holder when it was seeded.
    pub(crate) before_holder: Holder,
}

/// The tables, protected by the ledger's lock.
pub(crate) struct Table {
    pub(crate) devs: KVVec<Bdev>,
    pub(crate) opens: KVVec<Open>,
    /// Opens not tracked because the table was full.
    pub(crate) dropped: u64,
    /// Tracked opens held by a superblock.
    sb_opens: usize,
    /// The slots of those opens, while there are at most `MAX_SB_HELD` and
    /// `sb_overflow` is false; a superblock's shutdown looks only at these.
    sb_held: [u16; MAX_SB_HELD],
    /// Set when more opens were held by superblocks than `sb_held` has room
    /// for, until half that many are left: shutdowns scan all opens
    /// meanwhile.
    sb_overflow: bool,
    /// The device record found last: open/close churn is on one device at
    /// a time, so it is tried before the scan.
    last_dev: usize,
}

impl Table {
    /// Allocates the tables, empty.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            devs: KVVec::from_elem(Bdev::default(), MAX_BDEVS, GFP_KERNEL)?,
            opens: KVVec::from_elem(Open::default(), MAX_OPENS, GFP_KERNEL)?,
            dropped: 0,
            sb_opens: 0,
            sb_held: [0; MAX_SB_HELD],
            sb_overflow: false,
            last_dev: 0,
        })
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.devs.iter_mut().for_each(|d| d.used = false);
        self.opens.iter_mut().for_each(|o| *o = Open::default());
        self.dropped = 0;
        self.sb_opens = 0;
        self.sb_overflow = false;
    }

    /// Merges what [`seed`] found: block devices open before load or reset,
    /// which no probe saw.  Their files are unknown, so each device keeps a
    /// count of them ([`Bdev::before`]) and its exclusive holder.
    pub(crate) fn merge_seed(&mut self, found: &[Seed]) {
        for f in found {
            let i = match self.devs.iter().position(|d| d.used && d.dev == f.dev) {
                Some(i) => i,
                None => {
                    let Some(i) = self.devs.iter().position(|d| !d.used) else {
                        self.dropped += 1;
                        continue;
                    };
                    self.devs[i] = Bdev {
                        used: true,
                        dev: f.dev,
                        name: f.name,
                        disk_module: f.disk_module,
                        // Named, but not matched by owner: the next probed
                        // open reads the owner again.
                        owner: usize::MAX,
                        ..Bdev::default()
                    };
                    i
                }
            };
            let d = &mut self.devs[i];
            d.openers = f.openers;
            d.before = f.openers;
            d.before_holder = f.holder;
        }
    }

    /// Superblock `sb` shut down: its exclusive opens should close now.
    pub(crate) fn holder_shut_down(&mut self, sb: usize, now: u64) {
        if self.sb_opens == 0 {
            return;
        }
        if !self.sb_overflow {
            for &j in &self.sb_held[..self.sb_opens] {
                let o = &mut self.opens[j as usize];
                if o.used && o.holder == Holder::Superblock(sb) {
                    o.holder_down = now;
                }
            }
            return;
        }
        for o in self.opens.iter_mut() {
            if o.used && o.holder == Holder::Superblock(sb) {
                o.holder_down = now;
            }
        }
    }

    /// Slot `i` now holds an open held by a superblock.
    pub(crate) fn sb_hold(&mut self, i: usize) {
        if self.sb_opens < MAX_SB_HELD && !self.sb_overflow {
            self.sb_held[self.sb_opens] = i as u16;
        } else {
            self.sb_overflow = true;
        }
        self.sb_opens += 1;
    }

    /// The open in slot `i`, held by a superblock, was closed.
    pub(crate) fn sb_unhold(&mut self, i: usize) {
        if !self.sb_overflow {
            let held = &mut self.sb_held[..self.sb_opens];
            if let Some(k) = held.iter().position(|&j| j as usize == i) {
                held.swap(k, self.sb_opens - 1);
            }
        }
        self.sb_opens = self.sb_opens.saturating_sub(1);
    }

    /// Lists the opens held by superblocks again once few enough are left,
    /// so that shutdowns stop scanning every open.  A scan of all opens:
    /// process context (the audit), never a probe handler.  Waiting for
    /// none to be left could mean waiting forever, since a root filesystem
    /// never closes its device.
    pub(crate) fn relist_held(&mut self) {
        if !self.sb_overflow || self.sb_opens > MAX_SB_HELD / 2 {
            return;
        }
        let mut n = 0;
        for (j, o) in self.opens.iter().enumerate() {
            if o.used && matches!(o.holder, Holder::Superblock(_)) && n < MAX_SB_HELD {
                self.sb_held[n] = j as u16;
                n += 1;
            }
        }
        self.sb_opens = n;
        self.sb_overflow = false;
    }

    /// The record of the device `info` describes, made if needed.  Its
    /// names are taken when it is made, and again if the device number now
    /// belongs to another driver (dynamic majors are reused).
    ///
    /// Open/close churn is on one device at a time, so the record found
    /// last is tried first, inline; the scan is out of line.
    #[inline(always)]
    pub(crate) fn dev(&mut self, info: &BdevInfo) -> Option<&mut Bdev> {
        let last = self.last_dev;
        let d = &self.devs[last];
        if d.used && d.dev == info.dev && d.owner == info.owner as usize {
            return Some(&mut self.devs[last]);
        }
        self.dev_slow(info)
    }

    #[inline(never)]
    fn dev_slow(&mut self, info: &BdevInfo) -> Option<&mut Bdev> {
        let i = match self.devs.iter().position(|d| d.used && d.dev == info.dev) {
            Some(i) => i,
            None => {
                let i = self.devs.iter().position(|d| !d.used)?;
                self.devs[i] = Bdev {
                    used: true,
                    dev: info.dev,
                    owner: usize::MAX,
                    ..Bdev::default()
                };
                i
            }
        };
        self.last_dev = i;
        let d = &mut self.devs[i];
        if d.owner != info.owner as usize {
            let mut name = [0u8; 32];
            // SAFETY: `info.bdev` is open and its driver's module live (see
            // `BdevInfo::read`); formatting the name does not sleep.
            d.disk_module = unsafe {
                bindings::rl_bdev_name(name.as_mut_ptr().cast(), name.len(), info.bdev);
                module_name(info.owner)
            };
            d.name = Name::from_bytes(&name);
            d.owner = info.owner as usize;
        }
        Some(d)
    }

    /// The slot of the open of `file`, or, with `free`, a slot to record it
    /// in: open addressing from a hash of the file pointer, looking at most
    /// [`MAX_PROBE`] slots from there, so that a handler's work is bounded
    /// however full the table is.  An open is only ever recorded within that
    /// distance, so a lookup need not look further.  `probed` marks slots
    /// that were ever used, so a lookup stops at the first never-used one.
    pub(crate) fn open_slot(&mut self, file: usize, free: bool) -> Option<usize> {
        let mut i =
            ((file as u64 >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % MAX_OPENS;
        for _ in 0..MAX_PROBE {
            let o = &self.opens[i];
            if free && !o.used {
                return Some(i);
            }
            if !free && o.used && o.file == file {
                return Some(i);
            }
            if !free && !o.probed {
                return None;
            }
            i = (i + 1) % MAX_OPENS;
        }
        None
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
