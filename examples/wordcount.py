"""A parallel word count: workers on every P over a channel of file paths.

Main sends the paths on a channel and closes it; each worker goroutine
takes paths until the channel is drained, reads the file with
``pg.blocking`` (file I/O off the P's hub thread, Go's syscall hand-off:
other goroutines keep running), counts its words and sends the counts
back -- a copy, which main merges.  Without paths it writes its own
corpus of seeded random text into a temporary directory (removed at the
end).  The program checks the merged counts against a sequential count
of the same files, and shows how many files each P counted.

Go shape (fan-out over a channel of paths, fan-in of partial counts)::

    paths := make(chan string)
    counts := make(chan map[string]int)
    for w := 0; w < workers; w++ {
        go func() {
            for p := range paths {
                data, _ := os.ReadFile(p)
                counts <- count(data)
            }
        }()
    }

Run::

    python3 examples/wordcount.py [--files 40] [--words 5000] [FILE ...]
    parago run --procs 2 examples/wordcount.py README.md docs/*.md
"""

import argparse
import collections
import os
import random
import re
import tempfile
from pathlib import Path

import parago as pg

WORD = re.compile(r"[a-z']+")
VOCABULARY = (
    "go chan select goroutine channel mutex atomic pool buffer context deadline cancel "
    "scheduler steal queue park wake proc arena futex shard counter pipeline worker"
).split()


def count_words(text):
    return collections.Counter(WORD.findall(text.lower()))


def worker(paths, counts):
    for path in paths:  # until main closes paths and it is drained
        text = pg.blocking(Path(path).read_text, encoding="utf-8", errors="replace")
        counts.send((path, os.getpid(), count_words(text)))


def write_corpus(root, files, words, seed=1):
    rng = random.Random(seed)
    zipf = [1 / rank for rank in range(1, len(VOCABULARY) + 1)]  # a few words are common, most are rare
    paths = []
    for i in range(files):
        p = Path(root) / f"doc{i:03}.txt"
        lines = (" ".join(rng.choices(VOCABULARY, zipf, k=12)) for _ in range(words // 12 + 1))
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(str(p))
    return paths


def main(paths, workers):
    path_ch, counts = pg.Chan(), pg.Chan(len(paths))
    for _ in range(workers):
        pg.go(worker, path_ch, counts)
    for p in paths:
        path_ch.send(p)
    path_ch.close()
    total, per_p, seen = collections.Counter(), collections.Counter(), []
    for _ in paths:
        path, pid, c = counts.recv()
        total.update(c)
        per_p[pid] += 1
        seen.append(path)
    assert sorted(seen) == sorted(paths), "a file was counted twice or not at all"
    return total, per_p, pg.gomaxprocs()


def wordcount(paths, workers):
    total, per_p, procs = pg.run(main, paths, workers)
    sequential = collections.Counter()
    for p in paths:
        sequential.update(count_words(Path(p).read_text(encoding="utf-8", errors="replace")))
    assert total == sequential, "the parallel count differs from the sequential one"
    print(
        f"{len(paths)} files, {sum(total.values()):,} words, {len(total):,} distinct; "
        f"procs={procs}, {workers} workers; matches a sequential count"
    )
    print("  top words: " + ", ".join(f"{w} {n:,}" for w, n in total.most_common(8)))
    print("  files per P: " + ", ".join(f"pid {pid}: {n}" for pid, n in sorted(per_p.items())))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="files to count (default: a generated corpus)")
    ap.add_argument("--files", dest="nfiles", type=int, default=40, help="files to generate")
    ap.add_argument("--words", type=int, default=5000, help="words per generated file")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if args.files:
        wordcount(args.files, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="parago-wordcount-") as d:
            wordcount(write_corpus(d, args.nfiles, args.words), args.workers)
