// SPDX-License-Identifier: GPL-2.0

//! The bottom layer: safe wrappers of the kernel mechanisms refledger is
//! built on, and the readers of kernel objects every ledger shares.
//!
//! Nothing here knows a ledger.  Each wrapper owns one mechanism and states
//! the contract its `unsafe` parts rely on:
//!
//! - [`bindings`]: the C APIs `kernel::bindings` lacks, generated at build
//!   time from `src/bindings_helper.h`;
//! - [`compat`]: what differs between the 6.12 and 7.x `kernel` crates;
//! - [`kprobe`] and [`tracepoint`]: probes, their handlers' contexts and
//!   their teardown;
//! - [`probes`]: the set of every probe, armed by role, listed in `probes`;
//! - [`debugfs`]: the directory, its files and a formatter (`Line`) that
//!   does not go through `core::fmt` on hot lines;
//! - [`sync`]: the spinlock shared by probe handlers and readers;
//! - [`error`]: refledger's own error type, why something is unavailable;
//! - [`clock`]: the handlers' clock, the TSC scaled to monotonic time;
//! - [`evidence`]: call sites, stacks, names and times taken in a handler.

pub(crate) mod bindings;
pub(crate) mod clock;
pub(crate) mod compat;
pub(crate) mod debugfs;
pub(crate) mod error;
pub(crate) mod evidence;
pub(crate) mod kprobe;
pub(crate) mod probes;
pub(crate) mod sync;
pub(crate) mod tracepoint;
