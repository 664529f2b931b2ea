"""A small real-time order-matching engine (the seed's practice project "实时交易引擎").

::

    gateway (main) --orders--> router --+--> book AAA --+
      limit / cancel   Chan[Order]      +--> book BBB --+--events--> collector
                                        +--> book ...  -+  fills, acks   latencies,
                                       one goroutine per symbol          accounting

* Orders come in over one typed channel (``pg.Chan[Limit | Cancel]``,
  msgspec structs validated in the sender); the router forwards each to
  its symbol's book goroutine, so each book sees its orders in
  submission order.
* A book matches limit orders by price-time priority: an incoming order
  trades against the best opposite price first and, at one price, the
  oldest resting order first, always at the resting order's price; what is
  left rests in the book.  A cancel removes what is left of a resting order.
* Books send fills and one acknowledgement per order to a collector, which
  computes each order's latency (submit -> ack, including the channel hops
  and, unless ``--rate`` paces the gateway, the wait behind the orders
  queued ahead) and the accounting.

The program checks, for every order, ``filled + resting + cancelled ==
submitted`` (and so for the totals), and replays every symbol's orders
through the same ``Book`` sequentially: the fills and the resting orders
must be identical.  It prints throughput and latency percentiles.

Go shape::

    go func() { for o := range orders { books[o.Symbol] <- o } }()     // router
    func book(in <-chan Order, events chan<- Event) {                  // one per symbol
        for o := range in {
            for _, f := range b.match(o) { events <- f }
            events <- Ack{o.ID, o.TS, time.Now()}
        }
    }

Run::

    python3 examples/order_book.py [--orders 20000] [--symbols 4] [--seed 1] [--rate 5000]
    parago run --procs 2 examples/order_book.py --orders 5000
"""

import argparse
import collections
import heapq
import os
import random
import time

import msgspec

import parago as pg

BUY, SELL = "B", "S"


class Limit(msgspec.Struct, tag="limit", frozen=True):
    id: int
    symbol: str
    side: str  # BUY or SELL
    price: int  # in ticks
    qty: int
    ts: int  # submit time, time.monotonic_ns() (one clock for every process)


class Cancel(msgspec.Struct, tag="cancel", frozen=True):
    id: int  # this request's own id
    symbol: str
    target: int  # the order to cancel
    ts: int


class Fill(msgspec.Struct, tag="fill", frozen=True):
    symbol: str
    taker: int
    maker: int
    price: int
    qty: int


class Ack(msgspec.Struct, tag="ack", frozen=True):
    id: int
    submitted: int  # the request's ts
    done: int  # when the book finished it
    cancelled: int = 0  # for a Cancel: the quantity it removed


class Closed(msgspec.Struct, tag="closed", frozen=True):
    symbol: str
    resting: dict[int, int]  # order id -> quantity still in the book
    best_bid: int | None
    best_ask: int | None
    pid: int


Order = Limit | Cancel
Event = Fill | Ack | Closed


class Book:
    """One symbol's limit order book: price levels of FIFO queues, best prices in heaps."""

    def __init__(self, symbol):
        self.symbol = symbol
        self.levels = {BUY: {}, SELL: {}}  # price -> deque of [order id, quantity left]
        self.heaps = {BUY: [], SELL: []}  # -price for bids, price for asks; a price is in the heap iff in levels
        self.where = {}  # resting order id -> (side, price, its [id, quantity] entry)

    def best(self, side):
        heap, levels = self.heaps[side], self.levels[side]
        while heap:
            price = -heap[0] if side == BUY else heap[0]
            if levels[price]:
                return price
            heapq.heappop(heap)  # an emptied level: drop it now
            del levels[price]
        return None

    def limit(self, o):
        """Match o against the opposite side, rest what is left; returns the fills."""
        other = SELL if o.side == BUY else BUY
        left, fills = o.qty, []
        while left:
            price = self.best(other)
            if price is None or (price > o.price if o.side == BUY else price < o.price):
                break
            queue = self.levels[other][price]
            maker = queue[0]  # time priority: the oldest at the best price
            n = min(left, maker[1])
            fills.append(Fill(self.symbol, o.id, maker[0], price, n))
            maker[1] -= n
            left -= n
            if maker[1] == 0:
                queue.popleft()
                del self.where[maker[0]]
        if left:
            levels = self.levels[o.side]
            if o.price not in levels:
                levels[o.price] = collections.deque()
                heapq.heappush(self.heaps[o.side], -o.price if o.side == BUY else o.price)
            entry = [o.id, left]
            levels[o.price].append(entry)
            self.where[o.id] = (o.side, o.price, entry)
        return fills

    def cancel(self, target):
        """Remove what is left of a resting order; returns that quantity (0 if none)."""
        loc = self.where.pop(target, None)
        if loc is None:
            return 0  # filled already, or cancelled twice
        side, price, entry = loc
        self.levels[side][price].remove(entry)
        return entry[1]

    def resting(self):
        return {oid: entry[1] for oid, (_, _, entry) in self.where.items()}


def book(symbol, inbox, events):
    b = Book(symbol)
    for o in inbox:
        if isinstance(o, Limit):
            for f in b.limit(o):
                events.send(f)
            events.send(Ack(o.id, o.ts, time.monotonic_ns()))
        else:
            events.send(Ack(o.id, o.ts, time.monotonic_ns(), b.cancel(o.target)))
    events.send(Closed(symbol, b.resting(), b.best(BUY), b.best(SELL), os.getpid()))


def router(orders, books):
    for o in orders:
        books[o.symbol].send(o)
    for ch in books.values():
        ch.close()


def collector(nbooks, events, result):
    fills, latencies, cancelled, closed = [], [], {}, []
    while len(closed) < nbooks:
        e = events.recv()
        if isinstance(e, Fill):
            fills.append(e)
        elif isinstance(e, Ack):
            latencies.append(e.done - e.submitted)
            if e.cancelled:
                cancelled[e.id] = e.cancelled
        else:
            closed.append(e)
    result.send((fills, sorted(latencies), cancelled, closed))


def make_orders(n, symbols, seed):
    """A seeded stream: limit orders around a mid price, and ~10% cancels of earlier orders."""
    rng = random.Random(seed)
    mids = {s: 10_000 + 500 * i for i, s in enumerate(symbols)}
    placed = {s: [] for s in symbols}
    out = []
    for oid in range(n):
        s = rng.choice(symbols)
        if placed[s] and rng.random() < 0.1:
            out.append(("cancel", oid, s, rng.choice(placed[s])))
        else:
            side = rng.choice((BUY, SELL))
            price = mids[s] + rng.randint(-10, 10) + (-3 if side == BUY else 3)  # some cross, most rest
            out.append(("limit", oid, s, side, price, rng.randint(1, 100)))
            placed[s].append(oid)
    return out


def main(spec, symbols, rate):
    orders, events, result = pg.Chan[Order](64), pg.Chan[Event](1024), pg.Chan(1)
    books = {s: pg.Chan[Order](64) for s in symbols}
    pg.go(collector, len(symbols), events, result)
    for s, inbox in books.items():
        pg.go(book, s, inbox, events)
    pg.go(router, orders, books)
    t0 = time.perf_counter()
    for i, (kind, *fields) in enumerate(spec):
        if rate and (ahead := t0 + i / rate - time.perf_counter()) > 0.001:
            pg.sleep(ahead)  # pace the gateway at `rate` orders/s
        now = time.monotonic_ns()
        orders.send(Limit(*fields, ts=now) if kind == "limit" else Cancel(*fields, ts=now))
    orders.close()
    out = result.recv()
    return pg.gomaxprocs(), time.perf_counter() - t0, out


def replay(spec, symbols):
    """Every symbol's orders through the same Book, sequentially, in submission order."""
    books = {s: Book(s) for s in symbols}
    fills = []
    for kind, oid, s, *rest in spec:
        if kind == "limit":
            fills.extend(books[s].limit(Limit(oid, s, *rest, ts=0)))
        else:
            books[s].cancel(rest[0])
    return fills, {s: b.resting() for s, b in books.items()}


def check(spec, symbols, fills, cancelled, closed):
    submitted = {oid: rest[-1] for kind, oid, _, *rest in spec if kind == "limit"}
    filled = collections.Counter()
    for f in fills:
        filled[f.taker] += f.qty
        filled[f.maker] += f.qty
    resting = {oid: q for c in closed for oid, q in c.resting.items()}
    for oid, qty in submitted.items():
        parts = filled[oid], resting.get(oid, 0), cancelled.get(oid, 0)
        assert sum(parts) == qty, f"order {oid}: filled + resting + cancelled = {parts} != submitted {qty}"
    for c in closed:
        assert c.best_bid is None or c.best_ask is None or c.best_bid < c.best_ask, f"{c.symbol} is crossed"
    want_fills, want_resting = replay(spec, symbols)
    by_symbol = collections.defaultdict(list)
    for f in fills:
        by_symbol[f.symbol].append(f)
    for s in symbols:
        assert by_symbol[s] == [f for f in want_fills if f.symbol == s], f"{s}: fills differ from the replay"
        assert next(c.resting for c in closed if c.symbol == s) == want_resting[s], f"{s}: book differs"
    return sum(submitted.values()), sum(filled.values()) // 2, sum(resting.values()), sum(cancelled.values())


def pct(sorted_ns, q):
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0, help="orders/s the gateway submits (default: as fast as it can)")
    args = ap.parse_args()
    symbols = [chr(ord("A") + i) * 3 for i in range(args.symbols)]
    spec = make_orders(args.orders, symbols, args.seed)
    procs, secs, (fills, lat, cancelled, closed) = pg.run(main, spec, symbols, args.rate)
    # the cancel acks carry the cancel request's id: map them to the order they cancelled
    targets = {oid: rest[0] for kind, oid, _, *rest in spec if kind == "cancel"}
    cancelled = {targets[cid]: q for cid, q in cancelled.items()}
    sub, traded, rest, canc = check(spec, symbols, fills, cancelled, closed)
    ncancel = len(targets)
    print(
        f"{args.orders:,} orders ({args.orders - ncancel:,} limit, {ncancel:,} cancels) on {len(symbols)} symbols, "
        f"procs={procs}: {secs:.2f} s, {args.orders / secs:,.0f} orders/s; the gateway (main) on pid {os.getpid()}"
    )
    print(f"  {len(fills):,} fills, {traded:,} traded; every order: filled + resting + cancelled == submitted")
    print(
        f"  quantity: 2 x {traded:,} filled (both sides) + {rest:,} resting + {canc:,} cancelled == {sub:,} submitted"
    )
    print("  every book identical to a sequential replay (same fills, same resting orders)")
    print(
        f"  latency submit -> ack: p50 {pct(lat, 0.5):,.0f} us  p99 {pct(lat, 0.99):,.0f} us  "
        f"max {lat[-1] / 1000:,.0f} us"
    )
    for c in sorted(closed, key=lambda c: c.symbol):
        print(f"  {c.symbol}: bid {c.best_bid} / ask {c.best_ask}, {len(c.resting)} resting orders, pid {c.pid}")
