"""Go's classic concurrent prime sieve: a daisy chain of filter goroutines.

A generator goroutine sends 2, 3, 4, ... down a channel.  Main takes the
first number, which is prime, and puts a filter goroutine in front of the
chain that drops that prime's multiples; the next number out of the chain
is the next prime, and so on.  After N primes there are N filters, each on
whichever P stole it, handing numbers along unbuffered channels.  The
generator and the filters never return: when main returns, the runtime
unwinds them (``pg.Shutdown`` at their blocking point), as Go's program
simply exits.  The program checks its primes against a sequential sieve.

Go original (golang.org/doc/play/sieve.go)::

    func Generate(ch chan<- int) { for i := 2; ; i++ { ch <- i } }
    func Filter(in <-chan int, out chan<- int, prime int) {
        for { i := <-in; if i%prime != 0 { out <- i } }
    }
    func main() {
        ch := make(chan int)
        go Generate(ch)
        for i := 0; i < 10; i++ {
            prime := <-ch
            fmt.Println(prime)
            ch1 := make(chan int)
            go Filter(ch, ch1, prime)
            ch = ch1
        }
    }

Run::

    python3 examples/prime_sieve.py [-n 100] [--cap 0]
    parago run --procs 2 examples/prime_sieve.py -n 50
"""

import argparse
import itertools
import os
import time

import parago as pg


def generate(ch):
    for i in itertools.count(2):
        ch.send(i)


def filter_(inp, out, prime, where):
    where.send(os.getpid())
    for i in inp:
        if i % prime:
            out.send(i)


def sieve(n, cap):
    ch = pg.Chan(cap)
    where = pg.Chan(n)
    pg.go(generate, ch)
    primes = []
    for _ in range(n):
        prime = ch.recv()
        primes.append(prime)
        ch1 = pg.Chan(cap)
        pg.go(filter_, ch, ch1, prime, where)
        ch = ch1
    pids = [where.recv() for _ in range(n)]
    return primes, {p: pids.count(p) for p in set(pids)}


def first_primes(n):
    """The first n primes, sequentially (trial division by the primes so far)."""
    primes = []
    for k in itertools.count(2):
        if all(k % p for p in primes if p * p <= k):
            primes.append(k)
            if len(primes) == n:
                return primes


def main(n, cap):
    t0 = time.perf_counter()
    primes, per_p = sieve(n, cap)
    return primes, per_p, time.perf_counter() - t0, pg.gomaxprocs()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="primes to find (= filter goroutines)")
    ap.add_argument("--cap", type=int, default=0, help="channel capacity (Go's sieve: 0, unbuffered)")
    args = ap.parse_args()
    primes, per_p, secs, procs = pg.run(main, args.n, args.cap)
    print(f"the first {args.n} primes: {' '.join(map(str, primes))}")
    spread = ", ".join(f"{k} on pid {pid}" for pid, k in sorted(per_p.items()))
    print(f"{args.n} filter goroutines in a chain, procs={procs}: {secs:.2f} s; filters ran {spread}")
    assert primes == first_primes(args.n), "the sieve disagrees with trial division"
