// SPDX-License-Identifier: GPL-2.0

//! The middle layer: the ledgers' tables.
//!
//! Each table is self-contained: it knows neither the other tables nor the
//! global ledger that holds them, only the wrappers below it.  A table takes
//! plain values (an address, a snapshot of a kernel object, evidence) and
//! returns what happened (an [`events::Event`], a transition), so the joins
//! above decide what to do with it.  `events` is the one vocabulary the
//! tables share: a record's history is told as events.
//!
//! - [`superblocks`]: every superblock from first sight to free, its states
//!   and the leak flag;
//! - [`bdevs`]: block device opens and closes, by device and by opener;
//! - [`modules`]: module refcount gets and puts by call site, lock-free and
//!   fed by its own tracepoint callbacks;
//! - [`zfs`]: OpenZFS `zfsvfs_hold` calls and the references they kept;
//! - [`events`]: the ring of recent events.

pub(crate) mod bdevs;
pub(crate) mod events;
pub(crate) mod modules;
pub(crate) mod superblocks;
pub(crate) mod zfs;
