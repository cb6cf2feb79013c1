"""A longer fuzzing run of the Kineto and .skip loaders (tests run a short one).

Mutates real traces (byte flips, deletions, insertions of JSON punctuation) and
a .skip file for --seconds each; every input must load or fail with a one-line
TraceError. Prints the count of inputs, of clean errors and of loads.

    python bench/fuzz.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import gzip
import random
import tempfile
import time
from pathlib import Path

import skipnative
from skipnative import TraceError

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "kineto"


def mutate(rnd: random.Random, data: bytes, alphabet: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 12)):
        i = rnd.randrange(len(b))
        r = rnd.random()
        if r < 0.5:
            b[i] = rnd.randrange(256)
        elif r < 0.75:
            del b[i : i + rnd.randint(1, 200)]
        else:
            b[i:i] = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 8)))
    return bytes(b)


def run(label, seeds, suffix, seconds, rnd, tmp):
    n = errors = loads = 0
    until = time.time() + seconds
    p = Path(tmp) / f"input{suffix}"
    while time.time() < until:
        p.write_bytes(mutate(rnd, rnd.choice(seeds), b'{}[]",:0123456789.eE-\\ '))
        n += 1
        try:
            skipnative.load(p).metrics()
            loads += 1
        except TraceError as e:
            assert "\n" not in str(e), str(e)
            errors += 1
    print(f"{label}: {n:,} inputs, {errors:,} clean errors, {loads:,} loaded and analysed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    # whole traces (the two smallest), so an input that survives mutation can load
    seeds = [
        gzip.decompress((DATA / n).read_bytes())
        for n in ("a100_alexnet_train.json.gz", "sampled_rank0.json.gz")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        run("kineto", seeds, ".json", args.seconds, rnd, tmp)
        sp = Path(tmp) / "seed.skip"
        skipnative.load(DATA / "sampled_rank0.json.gz").save(sp)
        run(".skip", [sp.read_bytes()], ".skip", args.seconds, rnd, tmp)


if __name__ == "__main__":
    main()
