#!/usr/bin/python3
"""Random I/O through an NBD server with libnbd (python3-libnbd), checked against a model.

Used by tests/nbd_live.rs. Two modes:

  mix.py mix URI MODEL OUT SEED OPS DEPTH
      A random mix of reads, writes, trims and zero writes (half of them NO_HOLE), up to
      DEPTH commands in flight, none overlapping another in flight (so the model is exact).
      MODEL holds the image's bytes before; OUT gets them after. Every read is compared
      with the model. Prints one JSON line of counters ("mismatches", "errors", ...).

  mix.py acked URI OUT BLOCK
      Writes block after block (block i filled with byte i % 251 + 1), DEPTH 8, until the
      server goes away; writes the numbers of the acknowledged blocks to OUT, one a line.
"""

import json
import random
import sys

import nbd


def connect(uri):
    h = nbd.NBD()
    h.add_meta_context("base:allocation")
    h.connect_uri(uri)
    return h


def overlaps(a, b):
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def mix(uri, model_path, out_path, seed, ops, depth):
    rng = random.Random(seed)
    model = bytearray(open(model_path, "rb").read())
    h = connect(uri)
    size = h.get_size()
    assert size == len(model), f"server size {size} != model {len(model)}"
    counts = {"reads": 0, "writes": 0, "trims": 0, "zeroes": 0, "mismatches": 0, "errors": 0, "max_in_flight": 0}
    inflight = {}  # cookie -> (kind, off, len, buf, expected)
    issued = 0
    first_mismatch = None

    def pick_range():
        for _ in range(20):
            n = rng.choice([1, 512, 4096, 4096, 65536, rng.randint(1, 300000)])
            n = min(n, size)
            off = rng.randrange(0, size - n + 1)
            if rng.random() < 0.5:
                off -= off % 512
            if all(not overlaps((off, n), (o, l)) for (_, o, l, _, _) in inflight.values()):
                return off, n
        return None

    while issued < ops or inflight:
        while issued < ops and len(inflight) < depth:
            r = pick_range()
            if r is None:
                break
            off, n = r
            x = rng.random()
            if x < 0.40:
                buf = nbd.Buffer(n)
                c = h.aio_pread(buf, off)
                inflight[c] = ("read", off, n, buf, bytes(model[off:off + n]))
                counts["reads"] += 1
            elif x < 0.70:
                data = bytearray(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
                data = data[:n]
                if rng.random() < 0.2:
                    k = rng.randrange(n)
                    data[k:] = bytes(n - k)
                buf = nbd.Buffer.from_bytearray(data)
                flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
                c = h.aio_pwrite(buf, off, flags=flags)
                model[off:off + n] = data
                inflight[c] = ("write", off, n, buf, None)
                counts["writes"] += 1
            elif x < 0.85:
                c = h.aio_trim(n, off)
                model[off:off + n] = bytes(n)
                inflight[c] = ("trim", off, n, None, None)
                counts["trims"] += 1
            else:
                flags = nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0
                c = h.aio_zero(n, off, flags=flags)
                model[off:off + n] = bytes(n)
                inflight[c] = ("zero", off, n, None, None)
                counts["zeroes"] += 1
            issued += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], h.aio_in_flight())
        h.poll(-1)
        for c in list(inflight):
            kind, off, n, buf, expected = inflight[c]
            try:
                if not h.aio_command_completed(c):
                    continue
            except nbd.Error as e:
                counts["errors"] += 1
                print(f"{kind} {off}+{n}: {e}", file=sys.stderr)
                del inflight[c]
                continue
            if kind == "read" and bytes(buf.to_bytearray()) != expected:
                counts["mismatches"] += 1
                if first_mismatch is None:
                    first_mismatch = f"read {off}+{n}"
            del inflight[c]
    h.flush()
    h.shutdown()
    open(out_path, "wb").write(model)
    counts["ops"] = issued
    counts["first_mismatch"] = first_mismatch
    print(json.dumps(counts))


def acked(uri, out_path, block):
    h = connect(uri)
    blocks = h.get_size() // block
    inflight = {}
    done = []
    i = 0
    try:
        while i < blocks or inflight:
            while i < blocks and len(inflight) < 8:
                buf = nbd.Buffer.from_bytearray(bytearray([i % 251 + 1]) * block)
                inflight[h.aio_pwrite(buf, i * block)] = (i, buf)
                i += 1
            h.poll(-1)
            for c in list(inflight):
                if h.aio_command_completed(c):
                    done.append(inflight.pop(c)[0])
                    if len(done) % 32 == 0:
                        # Progress, for a test that kills the server mid-writes.
                        print(len(done), flush=True)
    except nbd.Error as e:
        print(f"stopped after {len(done)} acknowledged writes: {e}", file=sys.stderr)
    open(out_path, "w").write("".join(f"{b}\n" for b in done))


if __name__ == "__main__":
    if sys.argv[1] == "mix":
        mix(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    else:
        acked(sys.argv[2], sys.argv[3], int(sys.argv[4]))
