// SPDX-License-Identifier: GPL-2.0

//! The `zfs` file, and the OpenZFS part of `leaks`.

use crate::{
    join::ledger,
    tables::zfs::{
        HoldRecord, COUNT_EBUSY, COUNT_OK, COUNT_OTHER, COUNT_RELE, HOLDS_DROPPED, LAYOUT_REJECTED,
        MAX_FLAGGED, MAX_HOLDS, RECENT,
    },
    wrappers::{
        debugfs::{seq_print, SeqFile, Show},
        evidence::Secs,
    },
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

fn show_hold(m: &SeqFile, prefix: &str, r: &HoldRecord) {
    seq_print!(
        m,
        "{} t={} dataset={} result={} kept_refs={} sb=",
        prefix,
        Secs(r.ev.time),
        r.dataset.as_str(),
        r.result,
        r.kept
    );
    if r.sb != 0 {
        m.hashed(r.sb);
        seq_print!(m, ".{}", r.sb_gen);
    } else {
        seq_print!(m, "-");
    }
    seq_print!(m, " ");
    r.ev.show_who(m);
    seq_print!(m, "\n");
}

/// The `zfs` file: counters and the most recent holds.
pub(crate) struct ZfsFile;

impl Show for ZfsFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        // Copied out first: the lock is never held while printing.
        let (nflagged, n) = {
            let inner = l.inner.lock();
            (inner.zfs.nflagged, inner.zfs.nrecent)
        };
        seq_print!(
            m,
            "# holds_ok={} holds_ebusy={} holds_other={} vfs_reles={} flagged={} concurrent_capacity={} dropped={} layout_rejected={}\n",
            COUNT_OK.load(Ordering::Relaxed),
            COUNT_EBUSY.load(Ordering::Relaxed),
            COUNT_OTHER.load(Ordering::Relaxed),
            COUNT_RELE.load(Ordering::Relaxed),
            nflagged,
            MAX_HOLDS,
            HOLDS_DROPPED.load(Ordering::Relaxed),
            LAYOUT_REJECTED.load(Ordering::Relaxed)
        );
        for seq in n.saturating_sub(RECENT as u64)..n {
            let r = l.inner.lock().zfs.recent[(seq % RECENT as u64) as usize];
            show_hold(m, "hold", &r);
        }
        Ok(())
    }
}

/// The ZFS part of `leaks`: holds that returned EBUSY keeping a reference.
pub(crate) fn show_leaks(m: &SeqFile) {
    let Some(l) = ledger::get() else { return };
    let n = l.inner.lock().zfs.nflagged;
    for seq in n.saturating_sub(MAX_FLAGGED as u64)..n {
        let r = l.inner.lock().zfs.flagged[(seq % MAX_FLAGGED as u64) as usize];
        show_hold(m, "zfs_hold_leak", &r);
        r.ev.show_stack(m, "    ");
    }
}
