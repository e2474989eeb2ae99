#!/usr/bin/env python3
"""System-call helpers for the guest tests, where a shell cannot say exactly
which call failed or how (a shell redirect reports bash's own error).

    rlsys.py write PATH DATA       one open(2) and one write(2) of DATA (with
                                   Python escapes: \\n, \\x00...); prints OK
                                   or the errno name of the write (EINVAL,
                                   EBUSY) or of the open (EACCES)
    rlsys.py ctlfuzz CTL COUNT SEED
                                   COUNT malformed writes to refledger's
                                   control file, in categories; prints one
                                   "cat NAME tried=N einval=N unchanged=N"
                                   line per category and the first few
                                   offending inputs as "# ..." lines
    rlsys.py fixfuzz CTL COUNT SEED
                                   malformed writes to a fixture's ctl file:
                                   prints "tried=N einval=N other=N ok=N"
    rlsys.py mountloop DIR SECONDS MAX [FSTYPE [SOURCE [STOPFILE]]]
                                   mount(2) a tmpfs (or FSTYPE from SOURCE)
                                   on DIR and umount2(2) it, until SECONDS
                                   pass, MAX cycles, or STOPFILE exists;
                                   prints "cycles=N errors=N"
"""
import codecs
import ctypes
import errno
import os
import random
import sys
import time


def write_once(path, data):
    """One write(2) of DATA to PATH: None if it succeeded, else the errno."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return e.errno
    try:
        n = os.write(fd, data)
        if n != len(data):
            return "short write of %d of %d bytes" % (n, len(data))
        return None
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def errname(e):
    if e is None:
        return "OK"
    if isinstance(e, int):
        return errno.errorcode.get(e, str(e))
    return e


def read(path):
    with open(path, "rb") as f:
        return f.read()


# Malformed control writes, by category; every one of them must be refused.
# refledger's parser accepts exactly one of grace_ms=N (100..3600000),
# audit_ms=N (100..60000), modules=all|name,... (at most 8 names of up to 55
# of [A-Za-z0-9_-]), reset, audit; surrounding white space is ignored and a
# write of more than 256 bytes is refused whatever it holds.
COMMANDS = [b"grace_ms=2000", b"audit_ms=250", b"modules=loop", b"reset", b"audit"]
BAD_NUMBERS = [
    b"", b"0", b"99", b"-1", b"-2000", b"3600001", b"4294967295", b"4294967296",
    b"18446744073709551616", b"99999999999999999999999", b"abc", b"0x100",
    b"1e3", b"1_000", b"1,000", b"1000.0", b" 1000", b"1000 ms", b"1000ms",
    b"--1000", b"+-1000", b"\xff\xfe", b"1000\x00", b"\x001000", b"NaN",
    b"-0", b"-4294967296", b"\t",
]
AUDIT_ONLY_BAD = [b"60001", b"100000"]
JUNK = [b" x", b";", b";reset", b" reset", b"\x00", b"\x00reset", b"=", b"==1",
        b"\xff", b"\x7f", b"!", b"#", b" audit", b",", b"\x1b[0m"]


def fixed_cases(rng):
    """Yields (category, bytes) pairs: the systematic cases."""
    # Empty and white space only.
    for d in [b"", b"\n", b" ", b"\t\n", b"\n\n\n", b"\x00", b"\x00\n"]:
        yield "empty", d
    # Oversized: valid commands padded with white space past the 256-byte
    # limit, and long junk past a page.
    for n in [257, 300, 1024, 4095, 4096, 4097, 8192, 65536]:
        yield "oversize", b"grace_ms=1000" + b" " * (n - 13)
        yield "oversize", b"reset" + b"\n" * (n - 5)
        yield "oversize", bytes(rng.choice(b"abc=_1") for _ in range(n))
    # Numbers out of range, negative, overflowing, not numbers.
    for key in [b"grace_ms=", b"audit_ms="]:
        for v in BAD_NUMBERS + (AUDIT_ONLY_BAD if key == b"audit_ms=" else []):
            yield "values", key + v
            yield "values", key + v + b"\n"
    # Names refledger does not know, wrong case, bad module filters.
    for d in [b"grace_ms", b"audit_ms", b"GRACE_MS=1000", b"Reset", b"RESET", b"audi",
              b"resets", b"auditt", b"grace=1000", b"grace_ms:1000", b"=1000",
              b"grace_ms =1000", b"grace_ms= 1000", b"modules=", b"modules=,",
              b"modules=loop,", b"modules=,loop", b"modules=a;b", b"modules=a b",
              b"modules=a/b", b"modules=" + b"x" * 56, b"modules=" + b",".join([b"m"] * 9),
              b"modules=\xc3\xa9", b"modules=loop\x00", b"modules==loop"]:
        yield "names", d
    # Trailing junk after each valid command.
    for c in COMMANDS:
        for j in JUNK:
            yield "trailing", c + j
            yield "trailing", c + j + b"\n"
    # Several commands in one write.
    for a in COMMANDS:
        for b in COMMANDS:
            for sep in [b"\n", b" ", b";", b"\x00", b","]:
                if a.startswith(b"modules=") and sep == b",":
                    # modules=loop,reset is a list of two valid names.
                    continue
                yield "multiple", a + sep + b


def random_cases(count, rng):
    """Yields COUNT random (category, bytes) pairs."""
    # Binary: random bytes, each with a NUL or a byte that is not UTF-8 in
    # it, which no valid command has.
    done = 0
    while done < count:
        n = rng.randint(1, 300)
        d = bytearray(rng.getrandbits(8) for _ in range(n))
        d[rng.randrange(n)] = rng.choice([0, 0x80, 0xff, 0xc0])
        yield "binary", bytes(d)
        # And mutations of valid commands with junk spliced in.
        c = bytearray(rng.choice(COMMANDS))
        pos = rng.randrange(len(c) + 1)
        # Not a comma: one inside modules=loop makes a list of two names.
        junk = [j for j in JUNK if j != b","]
        c[pos:pos] = rng.choice(junk[1:]) if pos < len(c) else rng.choice(junk)
        if bytes(c).strip() not in COMMANDS:
            yield "mutated", bytes(c)
        done += 2


def ctlfuzz(ctl, count, seed):
    rng = random.Random(seed)
    before = read(ctl)
    stats = {}
    shown = 0
    fixed = list(fixed_cases(rng))
    for cat, data in fixed + list(random_cases(max(0, count - len(fixed)), rng)):
        s = stats.setdefault(cat, [0, 0, 0])
        s[0] += 1
        e = write_once(ctl, data)
        if e == errno.EINVAL:
            s[1] += 1
        after = read(ctl)
        if after == before:
            s[2] += 1
        if (e != errno.EINVAL or after != before) and shown < 10:
            shown += 1
            print("# %s: %r: %s, settings %s" % (cat, data[:80], errname(e),
                  "unchanged" if after == before else "now %r" % after))
            before = after
    for cat, (n, einval, same) in stats.items():
        print("cat %s tried=%d einval=%d unchanged=%d" % (cat, n, einval, same))


def fixfuzz(ctl, count, seed):
    """Malformed writes to a fixture's ctl (`verb name` commands)."""
    rng = random.Random(seed)
    tried = einval = other = ok = 0
    inputs = [b"", b"\n", b"hold", b"teardown", b"repair", b"swap x", b"restore x",
              b"x" * 63, b"x" * 64, b"x" * 4097, b"\x00", b"hold\x00x"]
    while len(inputs) < count:
        n = rng.randint(1, 100)
        inputs.append(bytes(rng.getrandbits(8) for _ in range(n)))
    for d in inputs:
        # A valid verb would act on the fixture: leave those out.
        words = d.strip().split(b" ", 1)
        if words[0] in (b"hold", b"teardown", b"repair", b"swap", b"restore") and len(words) > 1:
            continue
        if d.strip() in (b"swap", b"restore"):
            continue
        tried += 1
        e = write_once(ctl, d)
        if e is None:
            ok += 1
            print("# accepted: %r" % d[:80])
        elif e == errno.EINVAL:
            einval += 1
        else:
            other += 1
            print("# %s: %r" % (errname(e), d[:80]))
    print("tried=%d einval=%d other=%d ok=%d" % (tried, einval, other, ok))


def mountloop(path, seconds, limit, fstype="tmpfs", source="none", stop=None):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    p = path.encode()
    end = time.monotonic() + seconds
    cycles = errors = 0

    def more():
        if cycles >= limit:
            return False
        if cycles % 64:
            return True
        return time.monotonic() < end and not (stop and os.path.exists(stop))

    while more():
        if libc.mount(source.encode(), p, fstype.encode(), 0, None) != 0:
            errors += 1
            if errors == 1:
                print("# mount: %s" % os.strerror(ctypes.get_errno()))
            if errors > 10:
                break
            continue
        if libc.umount2(p, 0) != 0:
            errors += 1
            print("# umount: %s" % os.strerror(ctypes.get_errno()))
            break
        cycles += 1
    print("cycles=%d errors=%d" % (cycles, errors))


def main():
    cmd = sys.argv[1]
    if cmd == "write":
        data = codecs.escape_decode(os.fsencode(sys.argv[3]))[0]
        print(errname(write_once(sys.argv[2], data)))
    elif cmd == "ctlfuzz":
        ctlfuzz(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "fixfuzz":
        fixfuzz(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "mountloop":
        mountloop(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:8])
    else:
        sys.exit("usage: see the docstring")


if __name__ == "__main__":
    main()
