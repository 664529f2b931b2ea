"""The seed's §2.3 pipeline: generator -> 4 squarers (fan-out) -> one collector (fan-in).

Run: python examples/pipeline.py [N]
"""

import sys

import parago as pg


def gen(n, out):
    for i in range(n):
        out.send(i)
    out.close()


def square(inp, out, wg):
    for v in inp:
        out.send(v * v)
    wg.done()


def closer(wg, ch):
    wg.wait()
    ch.close()


def main(n=100_000):
    nums, squares = pg.Chan(1024), pg.Chan(1024)
    wg = pg.WaitGroup()
    pg.go(gen, n, nums)
    for _ in range(4):
        wg.add(1)
        pg.go(square, nums, squares, wg)
    pg.go(closer, wg, squares)
    total = sum(squares)  # receives until squares is closed
    assert total == sum(i * i for i in range(n))
    return total


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"sum of squares below {n}: {pg.run(main, n)}")
