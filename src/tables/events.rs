// SPDX-License-Identifier: GPL-2.0

//! The `events` ring: recent events, oldest first, with a count of those the
//! ring had to overwrite.

use crate::{
    wrappers::debugfs::{seq_print, SeqFile},
    wrappers::evidence::{Comm, Name, Secs},
};
use kernel::prelude::*;

/// How many events the ring holds.
pub(crate) const MAX_EVENTS: usize = 1024;

/// What happened.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Kind {
    /// A superblock was first seen by an audit (it predates refledger, or its
    /// creation was not probed).
    #[default]
    Seen,
    /// A new struct mount of a superblock (`vfs_create_mount`).
    Mount,
    /// A copy of a mount: bind mount, namespace copy (`clone_mnt`).
    Clone,
    /// `umount(2)` succeeded (`path_umount`).
    Umount,
    /// An `s_active` reference was dropped (`deactivate_super`).
    Release,
    /// The last `s_active` reference was dropped (`deactivate_locked_super`
    /// with `s_active` 1).
    FinalRelease,
    /// A reference was dropped under `s_umount` without being the last
    /// (`deactivate_locked_super` from `thaw_super`, or from a mount that
    /// found an existing superblock).
    LockedRelease,
    /// `generic_shutdown_super` ran.
    Shutdown,
    /// The superblock left the superblock list.
    Freed,
    /// A superblock was flagged as leaked.
    Leak,
    /// A flagged superblock shut down (or was mounted again).
    Resolved,
    /// umount(2) of one of its mounts failed with EBUSY.
    UmountBusy,
    /// `zpool export` failed with EBUSY while it existed (a ZFS superblock).
    ExportBusy,
    /// `zfsvfs_hold` returned EBUSY keeping a reference to it (#18309).
    HoldLeak,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Seen => "seen",
            Kind::Mount => "mount",
            Kind::Clone => "clone",
            Kind::Umount => "umount",
            Kind::Release => "release",
            Kind::FinalRelease => "final_release",
            Kind::LockedRelease => "locked_release",
            Kind::Shutdown => "shutdown",
            Kind::Freed => "freed",
            Kind::Leak => "leak",
            Kind::Resolved => "resolved",
            Kind::UmountBusy => "umount_busy",
            Kind::ExportBusy => "export_busy",
            Kind::HoldLeak => "zfs_hold_leak",
        }
    }
}

/// One event.  `sb` is kept as a number and only ever printed hashed.
#[derive(Clone, Copy, Default)]
pub(crate) struct Event {
    /// When, in nanoseconds since boot.
    pub(crate) time: u64,
    /// What.
    pub(crate) kind: Kind,
    /// The superblock's address.
    pub(crate) sb: usize,
    /// Its record's generation (see `superblocks`), 0 for none.
    pub(crate) gen: u32,
    /// Its filesystem type.
    pub(crate) fstype: Name<16>,
    /// Its `s_id`.
    pub(crate) s_id: Name<32>,
    /// `s_active` when the event happened (before a release).
    pub(crate) s_active: i32,
    /// The call site, or 0.
    pub(crate) caller: usize,
    /// The task, or 0 for events found by an audit.
    pub(crate) pid: i32,
    /// Its name.
    pub(crate) comm: Comm,
}

/// A fixed ring of events.
pub(crate) struct Ring {
    events: KVVec<Event>,
    /// Events ever recorded since the last reset.
    recorded: u64,
}

impl Ring {
    /// Allocates the ring.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            events: KVVec::from_elem(Event::default(), MAX_EVENTS, GFP_KERNEL)?,
            recorded: 0,
        })
    }

    /// Records an event, overwriting the oldest when full.
    pub(crate) fn push(&mut self, e: Event) {
        self.push_with(|slot| *slot = e);
    }

    /// Records an event that `write` writes in place, over the oldest when
    /// full: `write` must write every field.  For handlers, which record an
    /// event on every mount and unmount step, so that an event (about 110
    /// bytes) is not built on the stack and then copied in.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut Event)) {
        let i = (self.recorded % MAX_EVENTS as u64) as usize;
        write(&mut self.events[i]);
        self.recorded += 1;
    }

    /// Forgets every event.
    pub(crate) fn clear(&mut self) {
        self.recorded = 0;
    }

    /// Events overwritten before anyone could read them.
    pub(crate) fn dropped(&self) -> u64 {
        self.recorded.saturating_sub(MAX_EVENTS as u64)
    }

    /// The sequence number of the oldest event held.
    pub(crate) fn first(&self) -> u64 {
        self.dropped()
    }

    /// The sequence number the next event will get.
    pub(crate) fn end(&self) -> u64 {
        self.recorded
    }

    /// Event number `seq`, if it is still held.
    pub(crate) fn get(&self, seq: u64) -> Option<Event> {
        (seq >= self.first() && seq < self.recorded)
            .then(|| self.events[(seq % MAX_EVENTS as u64) as usize])
    }
}

/// Prints one event as a line.
pub(crate) fn show(m: &SeqFile, e: &Event) {
    seq_print!(m, "t={} event={} sb=", Secs(e.time), e.kind.name());
    m.hashed(e.sb);
    seq_print!(
        m,
        ".{} fstype={} s_id={} s_active={}",
        e.gen,
        e.fstype.as_str(),
        e.s_id.as_str(),
        e.s_active
    );
    if e.pid != 0 {
        seq_print!(m, " pid={} comm={}", e.pid, e.comm);
    }
    if e.caller != 0 {
        seq_print!(m, " caller=");
        m.symbol(e.caller);
    }
    seq_print!(m, "\n");
}
