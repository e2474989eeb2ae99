// SPDX-License-Identifier: GPL-2.0

//! The `control` file: reads show the settings, writes change them.
//!
//! One command per write: `grace_ms=N`, `audit_ms=N`, `modules=all` or
//! `modules=a,b`, `reset`, `audit`.  Anything else is `EINVAL`, with one log
//! line saying what is accepted, and changes nothing.

use crate::{
    join::{
        audit,
        ledger::{self, AUDIT_MS_RANGE, GRACE_MS_RANGE, MODNAME},
    },
    tables::modules,
    wrappers::debugfs::{seq_print, SeqFile, Show, Store},
};
use kernel::prelude::*;

/// The `control` file: reads show the settings, writes change them.
pub(crate) struct ControlFile;

impl Show for ControlFile {
    fn show(&self, m: &SeqFile) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        seq_print!(
            m,
            "grace_ms={}\naudit_ms={}\nmodules=",
            l.grace_ms(),
            l.audit_ms()
        );
        let filter = l.filter.lock();
        if filter.1 == 0 {
            seq_print!(m, "all");
        }
        for (i, name) in filter.0.iter().take(filter.1).enumerate() {
            let len = name.iter().position(|&c| c == 0).unwrap_or(MODNAME);
            let name = core::str::from_utf8(&name[..len]).unwrap_or("?");
            seq_print!(m, "{}{}", if i == 0 { "" } else { "," }, name);
        }
        seq_print!(m, "\n");
        Ok(())
    }
}

/// A parsed control command.
pub(crate) enum Command<'a> {
    /// `grace_ms=N`
    Grace(u32),
    /// `audit_ms=N`
    Audit(u32),
    /// `reset`
    Reset,
    /// `audit`
    AuditNow,
    /// `modules=all` (`None`) or `modules=a,b`: up to
    /// `modules::MAX_FILTER` module names, checked.
    Modules(Option<&'a str>),
}

/// Parses one control write.  Surrounding white space is ignored; anything
/// but one valid command is `EINVAL`.
pub(crate) fn parse(input: &[u8]) -> Result<Command<'_>> {
    let s = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
    let number = |v: &str, range: core::ops::RangeInclusive<u32>| -> Result<u32> {
        let n: u32 = v.parse().map_err(|_| EINVAL)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(EINVAL)
        }
    };
    match s.split_once('=') {
        Some(("grace_ms", v)) => Ok(Command::Grace(number(v, GRACE_MS_RANGE)?)),
        Some(("audit_ms", v)) => Ok(Command::Audit(number(v, AUDIT_MS_RANGE)?)),
        Some(("modules", "all")) => Ok(Command::Modules(None)),
        Some(("modules", v)) => {
            let valid = |name: &str| {
                !name.is_empty()
                    && name.len() <= MODNAME
                    && name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            };
            if v.split(',').count() > modules::MAX_FILTER || !v.split(',').all(valid) {
                return Err(EINVAL);
            }
            Ok(Command::Modules(Some(v)))
        }
        None if s == "reset" => Ok(Command::Reset),
        None if s == "audit" => Ok(Command::AuditNow),
        _ => Err(EINVAL),
    }
}

impl Store for ControlFile {
    fn store(&self, input: &[u8]) -> Result {
        let l = ledger::get().ok_or(ENODEV)?;
        let cmd = match parse(input) {
            Ok(c) => c,
            Err(e) => {
                pr_info!(
                    "control: rejected; expected grace_ms=<{}..{}>, audit_ms=<{}..{}>, modules=all|<name,...>, reset or audit\n",
                    GRACE_MS_RANGE.start(),
                    GRACE_MS_RANGE.end(),
                    AUDIT_MS_RANGE.start(),
                    AUDIT_MS_RANGE.end()
                );
                return Err(e);
            }
        };
        match cmd {
            Command::Grace(ms) => l.set_grace_ms(ms),
            Command::Audit(ms) => l.set_audit_ms(ms),
            Command::Reset => audit::reset(l),
            Command::AuditNow => audit::audit(l),
            Command::Modules(None) => {
                let mut filter = l.filter.lock();
                filter.1 = 0;
                modules::set_filter(None);
            }
            Command::Modules(Some(v)) => {
                let mut filter = l.filter.lock();
                let mut list: [&[u8]; modules::MAX_FILTER] = [&[]; modules::MAX_FILTER];
                filter.1 = 0;
                for (i, name) in v.split(',').enumerate() {
                    filter.0[i] = [0; MODNAME];
                    filter.0[i][..name.len()].copy_from_slice(name.as_bytes());
                    list[i] = name.as_bytes();
                    filter.1 = i + 1;
                }
                modules::set_filter(Some(&list[..filter.1]));
            }
        }
        Ok(())
    }
}
