#!/usr/bin/env python3
"""Instructions a pass of an mma kernel's main loops, from a SASS listing (tools/local_ptxas.sh
with SASS=1 KEEP=dir writes dir/sass.txt).

  python3 tools/sass_loop_count.py DIR/sass.txt [--min-mma 12]

A loop is a backward branch whose body holds at least --min-mma tensor instructions (HGMMA or
HMMA). For each, prints the body's size and the instructions on its common path: the masked
branch (a forward branch over >= 16 FSEL) and O's rescale (over >= 16 FMUL) are left out, as
they run on few passes; then the most frequent opcodes on that path."""
import argparse
import re
from collections import Counter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sass")
    ap.add_argument("--min-mma", type=int, default=12)
    a = ap.parse_args()
    ins = []
    for line in open(a.sass):
        m = re.match(r"\s+/\*([0-9a-f]+)\*/\s+(.*?)\s*;?\s*$", line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2)))
    at = {addr: i for i, (addr, _) in enumerate(ins)}

    def opcode(text):
        return (text.split()[1] if text.startswith("@") else text.split()[0]).split(".")[0]

    for i, (addr, text) in enumerate(ins):
        m = re.search(r"BRA (0x[0-9a-f]+)", text)
        if not m:
            continue
        start = int(m.group(1), 16)
        if start >= addr or start not in at:
            continue
        body = ins[at[start]:i + 1]
        if sum(("HGMMA" in t or "HMMA" in t) for _, t in body) < a.min_mma:
            continue
        skip = set()
        for j, (baddr, t) in enumerate(body):
            b = re.search(r"^@!?P\d BRA (0x[0-9a-f]+)", t)
            if not b:
                continue
            tgt = int(b.group(1), 16)
            if not (baddr < tgt <= addr):
                continue
            k = next(n for n, (x, _) in enumerate(body) if x == tgt)
            block = [x for _, x in body[j + 1:k]]
            if sum("FSEL" in x for x in block) >= 16 or sum(x.startswith("FMUL") for x in block) >= 16:
                skip.update(range(j + 1, k))
        path = [t for n, (_, t) in enumerate(body) if n not in skip]
        top = Counter(opcode(t) for t in path).most_common(16)
        print("loop %x-%x: body %d, common path %d | %s" %
              (start, addr, len(body), len(path), " ".join("%s:%d" % kv for kv in top)))


if __name__ == "__main__":
    main()
