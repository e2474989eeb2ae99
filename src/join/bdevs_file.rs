// SPDX-License-Identifier: GPL-2.0

//! The `bdevs` file, and the block device parts of `leaks` and of the
//! `modules` file's `held_by` lines.

use crate::{
    join::{
        ledger::{self, Ledger},
        superblocks_file,
    },
    tables::bdevs::{Bdev, Holder, Open, MAX_BDEVS, MAX_OPENS},
    wrappers::{
        clock::now_ns,
        debugfs::{seq_print, SeqFile, Show},
        evidence::{DevT, Secs},
    },
};
use kernel::prelude::*;

/// For an open held by a superblock: whether that superblock shut down, and
/// when.
fn holder_state(o: &Open) -> Option<(bool, u64)> {
    match o.holder {
        Holder::Superblock(_) => Some((o.holder_down != 0, o.holder_down)),
        _ => None,
    }
}

/// Prints an open's holder; `live` if it has not shut down.
fn show_holder(l: &Ledger, m: &SeqFile, h: Holder, live: bool) {
    match h {
        Holder::None => seq_print!(m, "exclusive=no"),
        Holder::Superblock(sb) => {
            seq_print!(m, "exclusive=yes holder=superblock sb=");
            m.hashed(sb);
            // A live holder holds the device, so the record at its address
            // is its own.  One that shut down may be freed, and its address
            // taken by another superblock: its generation is not known.
            if live {
                seq_print!(m, ".{}", l.inner.lock().sbs.gen(sb));
            }
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

impl Show for BdevsFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        let now = now_ns();
        let grace = l.grace_ns();
        let t = &l.bdevs;
        let ndev = {
            let inner = l.inner.lock();
            (0..MAX_BDEVS)
                .filter(|&i| t.dev_at(&inner.bdevs, i).used)
                .count()
        };
        let nopen = (0..MAX_OPENS).filter(|&j| t.open_at(j).used).count();
        let dropped = t.dropped();
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
            let d = t.dev_at(&l.inner.lock().bdevs, i);
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
                show_holder(l, m, d.before_holder, true);
                seq_print!(m, "\n");
            }
            for j in 0..MAX_OPENS {
                let o = t.open_at(j);
                let shut = holder_state(&o);
                if !o.used || o.dev != d.dev {
                    continue;
                }
                seq_print!(m, "  open t={} ", Secs(o.ev.time));
                show_holder(l, m, o.holder, o.holder_down == 0);
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
fn open_and_dev(l: &Ledger, j: usize) -> (Open, Option<Bdev>) {
    let o = l.bdevs.open_at(j);
    if !o.used {
        return (o, None);
    }
    let d = l.bdevs.find_dev(&l.inner.lock().bdevs, o.dev);
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
            show_holder(l, m, o.holder, o.holder_down == 0);
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
        show_holder(l, m, o.holder, o.holder_down == 0);
        seq_print!(m, " pid={} comm={}\n", o.ev.pid, o.ev.comm);
        o.ev.show_stack(m, "    ");
    }
    for i in 0..MAX_BDEVS {
        let d = l.bdevs.dev_at(&l.inner.lock().bdevs, i);
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
        show_holder(l, m, d.before_holder, true);
        seq_print!(m, "\n");
    }
    superblocks_file::show_holders_of(l, m, name);
}
