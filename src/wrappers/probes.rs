// SPDX-License-Identifier: GPL-2.0

//! The probes refledger places, and the `probes` debugfs file.
//!
//! Each ledger asks for probes by *role* (for example "release of a
//! superblock reference"), with a list of candidate symbols because kernels
//! rename and split functions.  [`ProbeSet::arm_all`] arms, for each role, the
//! first candidate that registers; the others are listed with the reason they
//! are not armed, so a user can tell "renamed in this kernel" from "inlined"
//! from "not loaded".

use crate::wrappers::{
    compat::{self, CStrDisplay},
    debugfs::{seq_print, SeqFile, Show},
    error::Unavailable,
    kprobe::{entry_handler, Handler, Probe, Regs},
    tracepoint::TracepointProbe,
};
use kernel::{prelude::*, str::CString};

/// A symbol that can fill a role, with the handler that understands its
/// arguments (they differ between kernel versions).
pub(crate) struct Candidate {
    /// The function to probe.
    pub(crate) symbol: &'static CStr,
    /// What to run when the probe fires.
    pub(crate) handler: Handler,
}

/// One role and the symbols that can fill it, most recent kernel first.
pub(crate) struct Spec {
    /// Short name of what the probe observes, shown as `role=`.
    pub(crate) role: &'static str,
    /// The module the candidates live in (armed when it loads, disarmed
    /// before it unloads), or `None` for the kernel itself.
    pub(crate) module: Option<&'static str>,
    /// Candidates, tried in order; the first that registers is armed.
    pub(crate) candidates: &'static [Candidate],
}

/// The role of probes asked for with the `extra_probes=` parameter.
pub(crate) const ROLE_EXTRA: &str = "extra";

/// The most `extra_probes=` names accepted.
pub(crate) const MAX_EXTRA: usize = 8;

/// The longest symbol name the kernel has (`KSYM_NAME_LEN` less the NUL).
const MAX_SYMBOL_LEN: usize = 511;

fn count_only(_regs: &Regs) {}

/// All of refledger's probes, armed or not.
pub(crate) struct ProbeSet {
    probes: KVec<Pin<KBox<Probe>>>,
    /// Tracepoint probes, with their roles, listed after the kprobes.
    tracepoints: KVec<(TracepointProbe, &'static str)>,
}

impl ProbeSet {
    /// Builds the probes for each ledger's `specs` and for the comma-separated symbols in
    /// `extra` (the `extra_probes=` parameter), without arming them.
    ///
    /// Returns `EINVAL` if `extra` is malformed: more than [`MAX_EXTRA`] names,
    /// an empty name, a name that is too long or has a character no symbol
    /// has.
    pub(crate) fn new(specs: &[&[Spec]], extra: Option<&CStr>) -> Result<Self> {
        let mut probes = KVec::new();
        for spec in specs.iter().flat_map(|s| s.iter()) {
            for c in spec.candidates {
                let name = c.symbol.to_cstring()?;
                probes.push(
                    KBox::pin_init(
                        Probe::new(name, spec.role, spec.module, c.handler),
                        GFP_KERNEL,
                    )?,
                    GFP_KERNEL,
                )?;
            }
        }
        if let Some(extra) = extra {
            let names = parse_extra(compat::cstr_bytes(extra))?;
            for name in names.iter().take_while(|n| !n.is_empty()) {
                // The parser checked the name is ASCII.
                let name = core::str::from_utf8(name).map_err(|_| EINVAL)?;
                let name = CString::try_from_fmt(format_args!("{}", name))?;
                let handler = entry_handler!(count_only);
                probes.push(
                    KBox::pin_init(Probe::new(name, ROLE_EXTRA, None, handler), GFP_KERNEL)?,
                    GFP_KERNEL,
                )?;
            }
        }
        Ok(Self {
            probes,
            tracepoints: KVec::new(),
        })
    }

    /// Adds tracepoint probes, registered by the ledger that owns their
    /// callbacks, to be listed under `role` and unregistered when the set
    /// is dropped.  Returns whether every one of them is armed.
    pub(crate) fn add_tracepoints(
        &mut self,
        probes: impl IntoIterator<Item = TracepointProbe>,
        role: &'static str,
    ) -> Result<bool> {
        let mut all = true;
        for p in probes {
            all = all && p.armed();
            self.tracepoints.push((p, role), GFP_KERNEL)?;
        }
        Ok(all)
    }

    /// Whether each role of `specs` has a probe armed.
    pub(crate) fn roles_armed(&self, specs: &[Spec]) -> bool {
        specs
            .iter()
            .all(|s| self.probes.iter().any(|p| p.role() == s.role && p.armed()))
    }

    /// The hits the kprobe core could not deliver to any of the kprobes.
    pub(crate) fn missed(&self) -> u64 {
        self.probes.iter().map(|p| p.missed()).sum()
    }

    /// Arms, for each role, the first candidate that registers.  A role none
    /// of whose candidates registers stays unarmed; that is reported in the
    /// `probes` file and in one log line, and is not an error.
    pub(crate) fn arm_all(&self) {
        self.arm_where(|_| true);
    }

    /// Arms the roles whose probes live in module `name` (it just loaded).
    pub(crate) fn arm_module(&self, name: &[u8]) {
        self.arm_where(|p| p.module().is_some_and(|m| m.as_bytes() == name));
    }

    /// Disarms the probes that live in module `name` (it is unloading).
    pub(crate) fn disarm_module(&self, name: &[u8]) {
        for p in self.probes.iter() {
            if p.module().is_some_and(|m| m.as_bytes() == name) {
                p.disarm();
            }
        }
    }

    fn arm_where(&self, select: impl Fn(&Probe) -> bool) {
        let mut i = 0;
        while i < self.probes.len() {
            let role = self.probes[i].role();
            let selected = select(&self.probes[i]);
            let mut armed = false;
            while i < self.probes.len() && self.probes[i].role() == role {
                let p = self.probes[i].as_ref();
                armed = armed || p.armed();
                // Extra probes are independent of each other: arm them all.
                if selected && (!armed || role == ROLE_EXTRA) {
                    armed = p.arm().is_ok() || armed;
                }
                i += 1;
            }
            if selected && !armed && self.probes[i - 1].module().is_none() {
                pr_info!("role {} has no probe armed; see the probes file\n", role);
            }
        }
    }
}

/// Splits `s` at commas into at most [`MAX_EXTRA`] validated names; unused
/// slots are empty.
fn parse_extra(s: &[u8]) -> Result<[&[u8]; MAX_EXTRA]> {
    let mut out: [&[u8]; MAX_EXTRA] = [&[]; MAX_EXTRA];
    if s.is_empty() {
        return Ok(out);
    }
    for (i, name) in s.split(|&c| c == b',').enumerate() {
        if i >= MAX_EXTRA {
            pr_err!("extra_probes: more than {} names\n", MAX_EXTRA);
            return Err(EINVAL);
        }
        let valid = !name.is_empty()
            && name.len() <= MAX_SYMBOL_LEN
            && name
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
        if !valid {
            pr_err!(
                "extra_probes: '{}' is not a symbol name\n",
                core::str::from_utf8(name).unwrap_or("(not UTF-8)")
            );
            return Err(EINVAL);
        }
        out[i] = name;
    }
    Ok(out)
}

impl Show for ProbeSet {
    fn show(&self, m: &SeqFile) -> Result {
        for (i, p) in self.probes.iter().enumerate() {
            seq_print!(
                m,
                "symbol={} role={} type={} ",
                CStrDisplay(p.symbol()),
                p.role(),
                p.kind()
            );
            if p.armed() {
                seq_print!(m, "state=armed");
            } else if let (None | Some(Unavailable::NotFound), Some(module)) =
                (p.error(), p.module())
            {
                seq_print!(m, "state=waiting reason=\"armed when {}.ko loads\"", module);
            } else if let Some(e) = p.error() {
                seq_print!(
                    m,
                    "state=failed error={} reason=\"{}\"",
                    e.to_errno(),
                    e.reason()
                );
            } else {
                // A candidate not tried because an earlier one filled the role.
                let by = self.probes[..i]
                    .iter()
                    .find(|q| q.role() == p.role() && q.armed())
                    .map(|q| CStrDisplay(q.symbol()));
                match by {
                    Some(s) => seq_print!(m, "state=unused reason=\"role served by {}\"", s),
                    None => seq_print!(m, "state=disarmed"),
                }
            }
            seq_print!(m, " hits={} missed={}\n", p.hits(), p.missed());
        }
        for (p, role) in self.tracepoints.iter() {
            seq_print!(
                m,
                "symbol=module:{} role={} type=tracepoint ",
                CStrDisplay(p.name()),
                role
            );
            match (p.armed(), p.error()) {
                (true, _) => seq_print!(m, "state=armed"),
                (false, Some(e)) => seq_print!(m, "state=failed error={}", e.to_errno()),
                (false, None) => seq_print!(m, "state=disarmed"),
            }
            seq_print!(m, "\n");
        }
        Ok(())
    }
}
