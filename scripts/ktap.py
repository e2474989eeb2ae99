#!/usr/bin/env python3
"""Counts the KTAP documents of one or more guest runs and checks their kernel logs.

    scripts/ktap.py HOST_RESULTS_FILE NAME:KTAP_FILE:DMESG_FILE...

One NAME:KTAP_FILE:DMESG_FILE per kernel the suite ran on.  Every leaf
result counts: a subtest's own results, or a test's line when it had no
subtests.  HOST_RESULTS_FILE holds results of host-side steps (builds,
clippy, rustfmt) in the same "ok/not ok N description" form.  Each kernel
log (with kmemleak's report, which tests/guest-run.sh appends to it) must
hold no WARNING, BUG, Oops, lockdep, KASAN, kmemleak, RCU stall, hung task
or soft lockup report; that check counts as one more result of that
kernel.  Prints the failures, a summary per kernel, then "N passed, N failed" over everything (with ", N skipped"
when some were skipped), and exits 1 on any failure.
"""
import re
import sys

RESULT = re.compile(r"^(\s*)(not ok|ok) (\d+) ?(.*)$")
BAD_DMESG = re.compile(
    # WARN*() and BUG*(), KASAN ("BUG: KASAN: ..."), soft lockups
    # ("watchdog: BUG: soft lockup"), "WARNING: suspicious RCU usage"
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|"
    # lockdep's reports (each also has a WARNING: or BUG: line), and
    # lockdep turning itself off; not a bare "lockdep", which a lockdep
    # kernel's boot has ("RCU lockdep checking is enabled")
    r"possible circular locking|possible recursive locking|"
    r"inconsistent lock state|lock inversion|bad unlock balance|"
    r"turning off the locking correctness validator|lockdep is turned off|"
    r"KASAN|UBSAN|"
    r"refcount_t: |sleeping function called from invalid context|"
    r"scheduling while atomic|"
    # kmemleak: its own message after a scan, and its report
    r"unreferenced object|suspected memory leak|"
    # RCU stalls, hung tasks, lockups
    r"rcu_.*detected stall|rcu: INFO|detected stalls on CPU|"
    r"blocked for more than|soft lockup|hard LOCKUP"
)


# A lockdep report starts with one of these titles and ends with the end of
# its stack trace.
LOCKDEP_TITLE = re.compile(
    r"possible circular locking|possible recursive locking|"
    r"inconsistent lock state|lock inversion|bad unlock balance"
)
REPORT_END = re.compile(r"</TASK>|---\[ end trace")
# A KTAP diagnostic line, at any depth, but not a KTAP header ("# Subtest:").
DIAG = re.compile(r"^\s*# (?!Subtest:)(.*)$")
# The most diagnostic lines shown with a failure.
NOTES = 10


def bad_lines(lines):
    """Returns (bad, known): the kernel log's lines that fail a run, and
    OpenZFS's own lockdep reports, which do not.

    OpenZFS does not support lockdep kernels (its configure refuses them;
    our test build is relabelled to link), and its own locking trips lockdep
    (for example dd_lock against zap_rwlock in txg_sync).  A lockdep report
    whose text names OpenZFS's modules ([zfs] or [spl] frames) and nothing
    of refledger's or of its test fixtures is OpenZFS's: it is reported as
    known, not counted.  Lockdep turns itself off after any report, so the
    guest suite runs the OpenZFS tests last.
    """
    bad, known = [], []
    lines = [l.rstrip("\n") for l in lines]
    i = 0
    while i < len(lines):
        l = lines[i]
        if LOCKDEP_TITLE.search(l):
            j = i
            while j < len(lines) and j < i + 400 and not REPORT_END.search(lines[j]):
                j += 1
            block = "\n".join(lines[max(i - 2, 0):j + 1])
            ours = re.search(r"refledger|leakyfs|blkleakfs|swapblk|swaptrace|stuckfs|zfstorn|nullprobe", block)
            if not ours and re.search(r"\[(zfs|spl)\]", block):
                known.append(l.strip())
                i = j + 1
                continue
        if BAD_DMESG.search(l):
            bad.append(l)
        i += 1
    return bad, known


def leaves(lines):
    """Yields (ok, skipped, description, notes) for each leaf result.

    notes are the diagnostic lines ("# ...") printed since the result
    before it, at most NOTES of them: what a test printed about a failure
    (tests/lib.sh diag), shown with it, since CI keeps only the tail of a
    run's output.
    """
    pending = []  # results seen at the current deeper level
    notes = []
    for line in lines:
        line = line.rstrip("\n")
        m = RESULT.match(line)
        if not m:
            d = DIAG.match(line)
            if d:
                notes = (notes + [d.group(1)])[-NOTES:]
            continue
        indent, verdict, _, desc = m.groups()
        res = (verdict == "ok", "# SKIP" in desc, desc, notes)
        notes = []
        if indent:
            pending.append(res)
            continue
        if pending:
            yield from pending
            # A parent that failed without a failing subtest (it crashed or
            # timed out) still counts as a failure.
            if not res[0] and all(p[0] for p in pending):
                yield res
            pending = []
        else:
            yield res
    yield from pending


def guest_results(ktap, dmesg):
    """The results of one guest run: its KTAP leaves and the kernel log check."""
    try:
        with open(ktap) as f:
            results = list(leaves(f))
    except OSError:
        results = [(False, False, "guest produced no KTAP output", [])]
    if not results:
        results = [(False, False, "guest ran no test", [])]
    try:
        with open(dmesg, errors="replace") as f:
            bad, known = bad_lines(f)
        results.append((not bad, False, "guest kernel log has no warning or bug report", []))
        for l in bad[:20]:
            print("dmesg: " + l)
        for l in known:
            print("dmesg (OpenZFS's own lockdep report, not counted): " + l)
    except OSError:
        results.append((False, False, "guest kernel log was saved", []))
    return results


def summary(results):
    passed = sum(1 for ok, skip, _, _ in results if ok and not skip)
    skipped = sum(1 for ok, skip, _, _ in results if ok and skip)
    failed = sum(1 for ok, _, _, _ in results if not ok)
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    return line


def main():
    if sys.argv[1:2] == ["--check-log"]:
        # The guest tests' check of the kernel log (tests/lib.sh
        # no_kernel_reports): the same rules, on standard input.
        bad, _ = bad_lines(sys.stdin)
        for l in bad[:20]:
            print(l)
        return 1 if bad else 0
    with open(sys.argv[1]) as f:
        results = [(ok, skip, "host: " + d, n) for ok, skip, d, n in leaves(f)]
    per_kernel = []
    for run in sys.argv[2:]:
        name, ktap, dmesg = run.split(":", 2)
        guest = [(ok, skip, f"{name}: {d}", n) for ok, skip, d, n in guest_results(ktap, dmesg)]
        per_kernel.append((name, guest))
        results += guest
    for _, _, d, notes in (r for r in results if not r[0]):
        print("FAILED: " + d)
        for n in notes:
            print("    # " + n)
    for name, guest in per_kernel:
        print(f"# kernel {name}: {summary(guest)}")
    print(summary(results))
    return 1 if any(not ok for ok, _, _, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
