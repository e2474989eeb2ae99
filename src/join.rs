// SPDX-License-Identifier: GPL-2.0

//! The top layer below the module root: the one place that joins the
//! tables, with each other and with the kernel's objects.
//!
//! - [`ledger`]: the global ledger: the tables under one lock and the
//!   settings; the only way handlers and readers reach the tables;
//! - the probe handlers, the only code that updates several tables at once:
//!   [`sb_handlers`], [`bdev_handlers`], [`zfs_handlers`];
//! - [`audit`]: the periodic reconciliation with the kernel's superblocks,
//!   which decides leaks (after asking [`holders`]);
//! - [`control`]: the `control` file;
//! - [`notifier`]: modules coming and going: arms and disarms the probes
//!   that live in a module, and tells the module table;
//! - the views, one file per debugfs file: [`superblocks_file`],
//!   [`bdevs_file`], [`modules_file`], [`zfs_file`], [`events_file`],
//!   [`holders`] (the holder walk, `src/holders.c`) and [`leaks`] (every
//!   ledger's flags, with holders and the chain of a superblock's block
//!   device and modules);
//! - [`captures`]: the holders of a superblock whose unmount was refused.

pub(crate) mod audit;
pub(crate) mod bdev_handlers;
pub(crate) mod bdevs_file;
pub(crate) mod captures;
pub(crate) mod control;
pub(crate) mod events_file;
pub(crate) mod holders;
pub(crate) mod leaks;
pub(crate) mod ledger;
pub(crate) mod modules_file;
pub(crate) mod notifier;
pub(crate) mod sb_handlers;
pub(crate) mod superblocks_file;
pub(crate) mod zfs_file;
pub(crate) mod zfs_handlers;
