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
//! Older kernels' names (`bdev_open_by_dev`, `blkdev_get_by_dev`,
//! `blkdev_put`) are listed as candidates so `probes` says which exist, but
//! only the 6.9+ argument layouts are decoded.

use crate::{
    bindings,
    debugfs::{seq_print, SeqFile},
    evidence::{is_err_or_null, now_ns, symbol_name, DevT, Evidence, Name, Secs, SiteClass},
    kprobe::{Handler, ProbeData, Regs},
    ledger,
    probes::{Candidate, Spec},
    superblocks,
};
use core::ffi::c_void;
use kernel::{c_str, prelude::*};

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
    used: bool,
    /// Ever used since the last reset (see `Table::open_slot`).
    probed: bool,
    file: usize,
    dev: u32,
    holder: Holder,
    /// When the superblock holding it shut down, or 0.
    holder_down: u64,
    ev: Evidence,
}

/// One block device.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bdev {
    used: bool,
    dev: u32,
    name: Name<32>,
    disk_module: Name<32>,
    /// The driver's module when the names were taken (0: built in).
    owner: usize,
    opens: u64,
    closes: u64,
    openers: i32,
    last_close: u64,
    /// Opens made before the ledger was loaded or reset, so not matched to
    /// a file: found by [`Table::seed`], and counted down as unmatched
    /// closes of the device come.
    before: i32,
    /// Its exclusive holder when it was seeded.
    before_holder: Holder,
}

/// The tables, protected by the ledger's lock.
pub(crate) struct Table {
    devs: KVVec<Bdev>,
    opens: KVVec<Open>,
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
    fn sb_hold(&mut self, i: usize) {
        if self.sb_opens < MAX_SB_HELD && !self.sb_overflow {
            self.sb_held[self.sb_opens] = i as u16;
        } else {
            self.sb_overflow = true;
        }
        self.sb_opens += 1;
    }

    /// The open in slot `i`, held by a superblock, was closed.
    fn sb_unhold(&mut self, i: usize) {
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
    fn dev(&mut self, info: &BdevInfo) -> Option<&mut Bdev> {
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
    fn open_slot(&mut self, file: usize, free: bool) -> Option<usize> {
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
    dev: u32,
    openers: i32,
    name: Name<32>,
    disk_module: Name<32>,
    holder: Holder,
}

/// Where [`seed_one`] collects what it finds.
struct SeedWalk<'a> {
    found: &'a mut KVVec<Seed>,
    dropped: u64,
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
struct BdevInfo {
    bdev: *mut bindings::block_device,
    dev: u32,
    /// The disk driver's module, named only when a device record is made.
    owner: *mut bindings::module,
    openers: i32,
}

impl BdevInfo {
    /// # Safety
    ///
    /// `bdev` must be a block device the caller holds open or is opening.
    unsafe fn read(bdev: *mut bindings::block_device) -> Self {
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

/// The name of module `m`, or `builtin`.
///
/// # Safety
///
/// `m` must be NULL or a live module.
pub(crate) unsafe fn module_name(m: *mut bindings::module) -> Name<32> {
    if m.is_null() {
        const BUILTIN: Name<32> = Name::literal(b"builtin");
        return BUILTIN;
    }
    // SAFETY: Per the safety contract.
    unsafe { Name::from_c((*m).name.as_ptr()) }
}

fn classify(holder: usize, hops: usize) -> Holder {
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
    // is always the system call's, so only the task is kept).
    let user = USER_OPEN.is(data[4], &[b"blkdev_open"]);
    let ev = Evidence::capture_if(regs, data[4], !user);
    // SAFETY: `bdev_open` succeeded: the device is open for this file.
    let info = unsafe { BdevInfo::read(data[0] as *mut _) };
    let holder = match data[2] {
        H_SB => Holder::Superblock(data[1]),
        H_SYM => Holder::Symbol(data[1]),
        H_OBJ => Holder::Object(data[1]),
        _ => Holder::None,
    };
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let t = &mut inner.bdevs;
    if let Some(d) = t.dev(&info) {
        d.opens += 1;
        d.openers = info.openers;
    }
    match t.open_slot(data[3], true) {
        Some(i) => {
            if let Holder::Superblock(_) = holder {
                t.sb_hold(i);
            }
            t.opens[i] = Open {
                used: true,
                probed: true,
                file: data[3],
                dev: info.dev,
                holder,
                holder_down: 0,
                ev,
            }
        }
        None => t.dropped += 1,
    }
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
    let Some(mut inner) = l.inner.try_lock() else {
        return;
    };
    let t = &mut inner.bdevs;
    let matched = if let Some(i) = t.open_slot(file as usize, false) {
        let o = &mut t.opens[i];
        o.used = false;
        if let Holder::Superblock(_) = o.holder {
            t.sb_unhold(i);
        }
        true
    } else {
        false
    };
    if let Some(d) = t.dev(&info) {
        if !matched && d.before > 0 {
            // The close of an open made before the ledger saw it.
            d.before -= 1;
        }
        d.closes += 1;
        // This close drops one opener after the handler returns.
        d.openers = info.openers - 1;
        d.last_close = now;
    }
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
                handler: Handler::Return {
                    entry: open_entry,
                    exit: open_exit,
                },
            },
            Candidate {
                symbol: c_str!("bdev_open_by_dev"),
                handler: Handler::Entry(count_only),
            },
            Candidate {
                symbol: c_str!("blkdev_get_by_dev"),
                handler: Handler::Entry(count_only),
            },
        ],
    },
    Spec {
        role: "bdev_close",
        module: None,
        candidates: &[
            Candidate {
                symbol: c_str!("bdev_release"),
                handler: Handler::Entry(on_release),
            },
            Candidate {
                symbol: c_str!("blkdev_put"),
                handler: Handler::Entry(count_only),
            },
        ],
    },
];

/// For an open held by a superblock: whether that superblock shut down, and
/// when.
fn holder_state(o: &Open) -> Option<(bool, u64)> {
    match o.holder {
        Holder::Superblock(_) => Some((o.holder_down != 0, o.holder_down)),
        _ => None,
    }
}

fn show_holder(l: &ledger::Ledger, m: &SeqFile, h: Holder) {
    match h {
        Holder::None => seq_print!(m, "exclusive=no"),
        Holder::Superblock(sb) => {
            seq_print!(m, "exclusive=yes holder=superblock sb=");
            m.hashed(sb);
            // The holder is live (it holds the device), so the record at
            // its address now is its own.
            seq_print!(m, ".{}", l.inner.lock().sbs.gen(sb));
        }
        Holder::Symbol(a) => {
            seq_print!(m, "exclusive=yes holder=");
            m.symbol(a);
        }
        Holder::Object(a) => {
            seq_print!(m, "exclusive=yes holder=object:");
            m.hashed(a);
        }
    }
}

/// Whether an open is a close still to come (pending) or a leak: held by a
/// superblock that shut down `since` ago.
fn close_state(shut: Option<(bool, u64)>, now: u64, grace: u64) -> Option<(&'static str, u64)> {
    match shut {
        Some((true, since)) => {
            let age = now.saturating_sub(since);
            Some((
                if age >= grace {
                    "leaked"
                } else {
                    "close_pending"
                },
                age,
            ))
        }
        _ => None,
    }
}

/// The `bdevs` file.
pub(crate) struct BdevsFile;

impl crate::debugfs::Show for BdevsFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        let now = now_ns();
        let grace = l.grace_ns();
        let (ndev, nopen, dropped) = {
            let inner = l.inner.lock();
            let t = &inner.bdevs;
            (
                t.devs.iter().filter(|d| d.used).count(),
                t.opens.iter().filter(|o| o.used).count(),
                t.dropped,
            )
        };
        seq_print!(
            m,
            "# devices={} capacity={} opens={} open_capacity={} dropped={}\n",
            ndev,
            MAX_BDEVS,
            nopen,
            MAX_OPENS,
            dropped
        );
        for i in 0..MAX_BDEVS {
            let d = l.inner.lock().bdevs.devs[i];
            if !d.used {
                continue;
            }
            seq_print!(
                m,
                "dev={} name={} disk_module={} openers={} opens={} closes={} last_close={}\n",
                DevT(d.dev),
                d.name.as_str(),
                d.disk_module.as_str(),
                d.openers,
                d.opens,
                d.closes,
                Secs(d.last_close)
            );
            if d.before > 0 {
                seq_print!(m, "  open before_load={} ", d.before);
                show_holder(l, m, d.before_holder);
                seq_print!(m, "\n");
            }
            for j in 0..MAX_OPENS {
                let o = l.inner.lock().bdevs.opens[j];
                let shut = holder_state(&o);
                if !o.used || o.dev != d.dev {
                    continue;
                }
                seq_print!(m, "  open t={} ", Secs(o.ev.time));
                show_holder(l, m, o.holder);
                if let Some((state, age)) = close_state(shut, now, grace) {
                    seq_print!(m, " state={} age_ms={}", state, age / 1_000_000);
                }
                seq_print!(m, " pid={} comm={}\n", o.ev.pid, o.ev.comm);
                o.ev.show_stack(m, "    ");
            }
        }
        Ok(())
    }
}

/// Copies open `j` and its device's record out of the table.
fn open_and_dev(l: &ledger::Ledger, j: usize) -> (Open, Option<Bdev>) {
    let inner = l.inner.lock();
    let o = inner.bdevs.opens[j];
    let d = inner
        .bdevs
        .devs
        .iter()
        .find(|d| d.used && d.dev == o.dev)
        .copied();
    (o, d)
}

/// The block device part of `leaks`: opens held by a superblock that shut
/// down longer than the grace period ago.
pub(crate) fn show_leaks(m: &SeqFile) {
    let Some(l) = ledger::get() else { return };
    let now = now_ns();
    let grace = l.grace_ns();
    for j in 0..MAX_OPENS {
        let (o, d) = open_and_dev(l, j);
        let shut = holder_state(&o);
        if !o.used {
            continue;
        }
        if let Some(("leaked", age)) = close_state(shut, now, grace) {
            seq_print!(
                m,
                "bdev_open_leak dev={} name={} ",
                DevT(o.dev),
                d.as_ref().map_or("-", |d| d.name.as_str())
            );
            show_holder(l, m, o.holder);
            seq_print!(
                m,
                " holder_shut_down_ms={}\n  open t={} ",
                age / 1_000_000,
                Secs(o.ev.time)
            );
            o.ev.show_who(m);
            seq_print!(m, "\n");
            o.ev.show_stack(m, "    ");
        }
    }
}

/// Prints the opens of devices whose driver is module `name`: part of the
/// answer to "why is this module busy".
pub(crate) fn show_holders_of(m: &SeqFile, name: &[u8]) {
    let Some(l) = ledger::get() else { return };
    for j in 0..MAX_OPENS {
        let (o, d) = open_and_dev(l, j);
        let Some(d) = d else { continue };
        if !o.used || !d.disk_module.is(name) {
            continue;
        }
        seq_print!(
            m,
            "  held_by bdev_open dev={} name={} t={} ",
            DevT(d.dev),
            d.name.as_str(),
            Secs(o.ev.time)
        );
        show_holder(l, m, o.holder);
        seq_print!(m, " pid={} comm={}\n", o.ev.pid, o.ev.comm);
        o.ev.show_stack(m, "    ");
    }
    for i in 0..MAX_BDEVS {
        let d = l.inner.lock().bdevs.devs[i];
        if !d.used || d.before <= 0 || !d.disk_module.is(name) {
            continue;
        }
        seq_print!(
            m,
            "  held_by bdev_open dev={} name={} before_load={} ",
            DevT(d.dev),
            d.name.as_str(),
            d.before
        );
        show_holder(l, m, d.before_holder);
        seq_print!(m, "\n");
    }
    superblocks::show_holders_of(l, m, name);
}
