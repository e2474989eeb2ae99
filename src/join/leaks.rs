// SPDX-License-Identifier: GPL-2.0

//! The `leaks` file: everything flagged, from every ledger, with who holds
//! each busy or leaked superblock now.
//!
//! A join: it reads the superblock, OpenZFS, block device and module
//! ledgers and the holder walk, which know nothing of each other.

use crate::{
    join::{
        bdevs_file,
        captures::{self, AtRefusal},
        holders::Holders,
        ledger,
        superblocks_file::{self, HolderReport},
        zfs_file,
    },
    tables::modules,
    wrappers::debugfs::{Line, SeqFile, Show},
};
use kernel::prelude::*;

/// Who holds a superblock now, and who did at its last refused unmount.
struct Report {
    now: Option<Holders>,
    then: Option<AtRefusal>,
}

impl HolderReport for Report {
    fn held_by(&self, m: &SeqFile) {
        let mut line = Line::new();
        if let Some(h) = &self.now {
            h.held_by(&mut line);
        }
        if let Some(c) = &self.then {
            c.held_by(&mut line);
        }
        line.write(m);
    }

    fn show(&self, m: &SeqFile) {
        if let Some(h) = &self.now {
            h.show_block(m);
        }
        if let Some(c) = &self.then {
            c.show(m);
        }
    }
}

/// The `leaks` file.
pub(crate) struct LeaksFile;

impl Show for LeaksFile {
    fn size_hint(&self) -> usize {
        64 << 10
    }

    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        let walk = |sb: usize, gen: u32| {
            Some(Report {
                now: Holders::of_record(l, sb, gen),
                then: AtRefusal::of(sb, gen),
            })
        };
        superblocks_file::show_leaks(l, m, walk)?;
        zfs_file::show_leaks(m);
        superblocks_file::show_busy(l, m, walk);
        superblocks_file::show_stuck(l, m);
        bdevs_file::show_leaks(m);
        modules::show_leaks(m, bdevs_file::show_holders_of);
        let dropped = captures::dropped();
        if dropped != 0 {
            let mut line = Line::new();
            line.str("# at_refusal captures_dropped=")
                .u64(dropped)
                .end(m);
        }
        Ok(())
    }
}
