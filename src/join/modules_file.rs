// SPDX-License-Identifier: GPL-2.0

//! The `modules` file: the module table, with the block devices and
//! superblocks that hold each loaded module.

use crate::{
    join::bdevs_file,
    tables::modules,
    wrappers::debugfs::{SeqFile, Show},
};
use kernel::prelude::*;

/// The `modules` file.
pub(crate) struct ModulesFile;

impl Show for ModulesFile {
    fn show(&self, m: &SeqFile) -> Result {
        modules::show(m, bdevs_file::show_holders_of)
    }
}
