// SPDX-License-Identifier: GPL-2.0

//! The `events` file: the ring of recent events, oldest first.

use crate::{
    join::ledger::{self, Ledger},
    tables::events,
    wrappers::debugfs::{seq_print, SeqFile, Show},
};
use kernel::prelude::*;

/// The `events` file.
pub(crate) struct EventsFile;

impl Show for EventsFile {
    fn size_hint(&self) -> usize {
        // Up to `MAX_EVENTS` lines of about 200 bytes.
        events::MAX_EVENTS * 220
    }

    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        show_events(l, m)
    }
}

/// Prints every event in the ring.
fn show_events(l: &Ledger, m: &SeqFile) -> Result {
    let (first, end) = {
        let inner = l.inner.lock();
        (inner.events.first(), inner.events.end())
    };
    seq_print!(
        m,
        "# capacity={} held={} dropped={}\n",
        events::MAX_EVENTS,
        end - first,
        first
    );
    // One event at a time, so probe handlers never wait long for the lock.
    // Events recorded meanwhile are left for the next read; one overwritten
    // meanwhile is skipped.
    for seq in first..end {
        let e = l.inner.lock().events.get(seq);
        if let Some(e) = e {
            events::show(m, &e);
        }
    }
    Ok(())
}
