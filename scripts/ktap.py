#!/usr/bin/env python3
"""Counts a KTAP document's results and checks a guest's kernel log.

    scripts/ktap.py KTAP_FILE DMESG_FILE [HOST_RESULTS_FILE]

Every leaf result counts: a subtest's own results, or a test's line when it
had no subtests.  HOST_RESULTS_FILE holds results of host-side steps (build,
clippy, rustfmt) in the same "ok/not ok N description" form.  The kernel log
must hold no WARNING, BUG, Oops, lockdep or KASAN report; that check counts
as one more result.  Prints the failures, then "N passed, N failed" (with
", N skipped" when some were skipped), and exits 1 on any failure.
"""
import re
import sys

RESULT = re.compile(r"^(\s*)(not ok|ok) (\d+) ?(.*)$")
BAD_DMESG = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|"
    r"possible circular locking|possible recursive locking|"
    r"inconsistent lock state|lockdep|KASAN|UBSAN|"
    r"refcount_t: |sleeping function called from invalid context|"
    r"scheduling while atomic"
)


def leaves(lines):
    """Yields (ok, skipped, description) for each leaf result."""
    pending = []  # results seen at the current deeper level
    for line in lines:
        m = RESULT.match(line.rstrip("\n"))
        if not m:
            continue
        indent, verdict, _, desc = m.groups()
        res = (verdict == "ok", "# SKIP" in desc, desc)
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


def main():
    ktap, dmesg = sys.argv[1], sys.argv[2]
    results = []
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            results += list(leaves(f))
    try:
        with open(ktap) as f:
            guest = list(leaves(f))
    except OSError:
        guest = [(False, False, "guest produced no KTAP output")]
    if not guest:
        guest = [(False, False, "guest ran no test")]
    results += guest
    try:
        with open(dmesg, errors="replace") as f:
            bad = [l.rstrip() for l in f if BAD_DMESG.search(l)]
        results.append((not bad, False, "guest kernel log has no warning or bug report"))
        for l in bad[:20]:
            print("dmesg: " + l)
    except OSError:
        results.append((False, False, "guest kernel log was saved"))

    passed = sum(1 for ok, skip, _ in results if ok and not skip)
    skipped = sum(1 for ok, skip, _ in results if ok and skip)
    failed = [d for ok, _, d in results if not ok]
    for d in failed:
        print("FAILED: " + d)
    line = f"{passed} passed, {len(failed)} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
