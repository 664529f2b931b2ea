"""pg.net and the netpoller (DESIGN §1 "Network -- the netpoller").

procs=1 and procs=2; every test has a timeout and the conftest leak check
counts fds before and after.  Timing asserts keep generous margins (the
machine is small and shared): they tell "the P kept running" (milliseconds)
from "the P was held" (a second).
"""

from __future__ import annotations

import errno
import gc
import os
import re
import socket
import struct
import threading
import time

import pytest

import parago as pg
from parago._runtime import netpoll, state
from parago._shim import views
from tests.helpers import go_on

pytestmark = pytest.mark.timeout(60)


def _p() -> int:
    return state.rt.p


def _up(ch: pg.Chan) -> None:
    ch.send(_p())


def _ps_up() -> None:
    """Wait until every P runs goroutines (a spawn/forkserver P that is
    still starting gets no placements: tests that count per P wait first)."""
    n = pg.gomaxprocs()
    ch = pg.Chan(n)
    for p in range(n):
        go_on(p, _up, ch)
    assert sorted(_recv_timeout(ch) for _ in range(n)) == list(range(n))


def _recv_timeout(ch: pg.Chan, seconds: float = 20.0):
    i, v, _ = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    assert i == 0, f"nothing arrived within {seconds} s"
    return v


# ----------------------------------------------------------------------
# the primitive


def test_wait_fd_ready_timeout_and_closed(run):
    def main():
        a, b = socket.socketpair()
        try:
            a.setblocking(False)
            assert netpoll.wait_fd(a.fileno(), False, time.time() - 1) == netpoll.TIMEOUT  # past: at once
            t0 = time.monotonic()
            assert netpoll.wait_fd(a.fileno(), False, time.time() + 0.1) == netpoll.TIMEOUT
            assert 0.05 < time.monotonic() - t0 < 5
            out = pg.Chan(4)

            def waiter():
                out.send(netpoll.wait_fd(a.fileno(), False, None))

            pg.go_local(waiter)
            pg.go_local(waiter)  # two goroutines on one fd
            pg.sleep(0.05)
            b.send(b"x")
            assert [out.recv(), out.recv()] == [netpoll.READY, netpoll.READY]
            a.recv(1)
            pg.go_local(waiter)
            pg.sleep(0.05)
            assert netpoll.nwaiters(state.rt) == 1
            assert views.p_get(state.rt.arena, state.rt.p, "nnetpoll") == 1  # what schedtrace shows
            netpoll.close_fd(a.fileno())
            assert out.recv() == netpoll.CLOSED
            assert netpoll.wait_fd(b.fileno(), True, None) == netpoll.READY
        finally:
            a.close()
            b.close()

    run(main)


def test_wait_fd_from_a_thread_polls(run):
    def main():
        a, b = socket.socketpair()
        res = []
        th = threading.Thread(target=lambda: res.append(netpoll.wait_fd(a.fileno(), False, time.time() + 0.05)))
        th.start()
        th.join()
        b.send(b"x")
        th = threading.Thread(target=lambda: res.append(netpoll.wait_fd(a.fileno(), False, None)))
        th.start()
        th.join()
        a.close()
        b.close()
        return res

    assert run(main) == [netpoll.TIMEOUT, netpoll.READY]


def _slow_server(ln: socket.socket, delay: float) -> None:
    c, _ = ln.accept()
    with c:
        c.recv(100)
        time.sleep(delay)
        c.sendall(b"late answer")


def test_a_goroutine_blocked_reading_does_not_stop_a_ticker_on_its_p(run):
    # the measured case of issue 18: a ticker beside a goroutine waiting 1 s
    # on the network got 2 ticks in that second, its worst 986 ms late
    def main():
        srv = socket.create_server(("127.0.0.1", 0))
        th = threading.Thread(target=_slow_server, args=(srv, 1.0))
        th.start()
        out = pg.Chan(2)

        def reader():
            c = pg.net.dial("127.0.0.1:%d" % srv.getsockname()[1])
            c.write(b"hi")
            out.send(c.read())
            c.close()

        def ticker():
            worst = 0.0
            n = 0
            last = time.perf_counter()
            end = last + 0.9
            while time.perf_counter() < end:
                pg.sleep(0.02)
                now = time.perf_counter()
                worst = max(worst, now - last - 0.02)
                last = now
                n += 1
            out.send((n, worst))

        pg.go_local(reader)
        pg.go_local(ticker)
        n, worst = out.recv()
        assert out.recv() == b"late answer"
        th.join()
        srv.close()
        return n, worst

    n, worst = run(main)
    assert n >= 20, f"only {n} ticks in 0.9 s"
    assert worst < 0.25, f"worst tick {worst * 1000:.0f} ms late: the P was held"


# ----------------------------------------------------------------------
# conns: read/write, EOF, half-close, addresses, makefile


def _echo(conn: pg.net.Conn) -> None:
    with conn:
        while True:
            b = conn.read()
            if not b:
                return
            conn.write(b)


def test_dial_listen_echo_half_close_and_addresses(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        host, port = ln.addr.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        pg.go_local(lambda: _echo(ln.accept()))
        c = pg.net.dial(ln.addr, timeout=10)
        assert c.remote_addr == ln.addr
        assert c.local_addr.startswith("127.0.0.1:")
        assert c.write(b"hello ") == 6
        assert c.write(bytearray(b"world")) == 5
        c.close_write()
        got = b""
        while True:
            b = c.read()
            if not b:
                break
            got += b
        assert got == b"hello world"
        with pytest.raises(BrokenPipeError, match="close_write"):
            c.write(b"more")
        c.close()
        c.close()  # again: nothing
        with pytest.raises(pg.net.ClosedConnError, match="^use of closed network connection$"):
            c.read()
        ln.close()

    run(main)


def test_makefile_readline_and_buffered_bytes_stay_with_the_conn(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        c.write(b"line one\nline two\nrest")
        c.close_write()
        f = s.makefile("rb")
        assert f.readline() == b"line one\n"
        assert s.read() == b"line two\nrest"  # the file's read-ahead is the conn's
        assert f.readline() == b""
        t = s.makefile("w", encoding="utf-8")
        t.write("text\n")
        t.flush()
        assert c.makefile("r", encoding="utf-8").readline() == "text\n"
        for x in (s, c, ln):
            x.close()

    run(main)


def test_unix_and_ipv6_addresses(run, tmp_path):
    path = str(tmp_path / "sock")

    def main():
        ln = pg.net.listen("unix:" + path)
        assert ln.addr == "unix:" + path
        pg.go_local(lambda: _echo(ln.accept()))
        c = pg.net.dial("unix:" + path)
        c.write(b"u")
        assert c.read() == b"u"
        c.close()
        ln.close()
        assert not os.path.exists(path)  # Go unlinks a unix listener's file
        if socket.has_ipv6:
            try:
                ln6 = pg.net.listen("[::1]:0")
            except OSError:
                return  # no IPv6 loopback here
            assert ln6.addr.startswith("[::1]:")
            pg.go_local(lambda: _echo(ln6.accept()))
            c = pg.net.dial(ln6.addr)
            c.write(b"6")
            assert c.read() == b"6"
            c.close()
            ln6.close()

    run(main)


def test_async_forms(run):
    async def amain():
        ln = pg.net.listen("127.0.0.1:0")
        c = await pg.net.dial_async(ln.addr, timeout=10)
        s = await ln.accept_async()
        await c.write_async(b"ping")
        assert await s.read_async(10) == b"ping"
        s.set_read_deadline(time.time() + 0.05)
        with pytest.raises(pg.net.DeadlineExceeded):
            await s.read_async()
        for x in (s, c, ln):
            x.close()
        return "ok"

    assert run(amain) == "ok"


def test_blocking_form_from_an_async_goroutine_names_the_async_form(run):
    async def amain():
        ln = pg.net.listen("127.0.0.1:0")
        try:
            with pytest.raises(pg.ParagoError, match="async"):
                ln.accept()
        finally:
            ln.close()

    run(amain)


# ----------------------------------------------------------------------
# moving conns between goroutines (and Ps)


def _handle_count(conn: pg.net.Conn, out: pg.Chan, release: pg.Chan) -> None:
    out.send(_p())
    release.recv_ok()  # every handler is live at once: placement sees the load
    _echo(conn)


def test_accept_loop_moves_conns_and_handlers_run_on_every_p(run, procs):
    n = 24

    def main():
        _ps_up()
        ln = pg.net.listen("127.0.0.1:0")
        out, res, release = pg.Chan(n), pg.Chan(n), pg.Chan()
        # the clients are threads: the Ps' load is the handlers' alone, so
        # placement alone decides where they run
        threads = [threading.Thread(target=_thread_client, args=(ln.addr, i, res)) for i in range(n)]
        for t in threads:
            t.start()
        for _ in range(n):
            conn = ln.accept()
            pg.go(_handle_count, conn, out, release)
            with pytest.raises(pg.net.ClosedConnError, match="moved"):
                conn.read()
        per_p: dict[int, int] = {}
        for _ in range(n):
            p = _recv_timeout(out)
            per_p[p] = per_p.get(p, 0) + 1
        release.close()
        assert all(_recv_timeout(res) for _ in range(n))
        for t in threads:
            t.join()
        ln.close()
        return per_p

    per_p = run(main)
    assert sum(per_p.values()) == n
    assert len(per_p) == procs, f"handlers ran on {per_p} only"


def _thread_client(addr: str, i: int, res: pg.Chan) -> None:
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as c:
        msg = b"%d:" % i * 50
        c.sendall(msg)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
    res.send(got == msg)


def _take_rest(conn: pg.net.Conn, expect: int, out: pg.Chan) -> None:
    out.send(("started", _p()))
    got = b""
    while len(got) < expect:
        b = conn.read()
        if not b:
            break
        got += b
    out.send(("data", got))
    conn.close()


def test_a_moved_conn_keeps_every_byte(run):
    # bytes sent before the move (some already read ahead by makefile),
    # during it and after it all arrive, once, in order
    total = 200_000
    payload = bytes(i % 251 for i in range(total))

    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        c.write(b"header\n" + payload[:1000])
        f = s.makefile("rb")
        assert f.readline() == b"header\n"  # read ahead: the file's buffer moves with the conn
        out = pg.Chan(4)
        c.write(payload[1000:50_000])
        pg.go(_take_rest, s, total, out)
        c.write(payload[50_000:120_000])
        assert _recv_timeout(out)[0] == "started"
        c.write(payload[120_000:])
        c.close_write()
        kind, rest = _recv_timeout(out)
        assert kind == "data"
        assert len(rest) == total and rest == payload
        c.close()
        ln.close()

    run(main)


def _accept_one(ln: pg.net.Listener, out: pg.Chan) -> None:
    c = ln.accept()
    out.send(c.read())
    c.close()
    ln.close()


def test_a_listener_moves_and_a_conn_travels_on_a_channel(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        addr = ln.addr
        out = pg.Chan(1)
        pg.go(_accept_one, ln, out)
        with pytest.raises(pg.net.ClosedConnError, match="moved"):
            ln.accept()
        c = pg.net.dial(addr)
        ch = pg.Chan(1)
        ch.send(c)
        c2 = ch.recv()
        assert c2.remote_addr == addr
        c2.write(b"via a channel")
        assert _recv_timeout(out) == b"via a channel"
        c2.close()

    run(main)


# the buffered payload keeps its reference on the move's 128-byte anchor, as
# it keeps one on any handle inside it (a dropped channel's buffered values
# are not decoded, so their references are never given back)
@pytest.mark.arena_residue_ok
def test_a_conn_never_received_is_closed_at_teardown(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        ch = pg.Chan(1)
        ch.send(ln.accept())  # buffered, never received
        c.close()
        ln.close()

    run(main)  # the leak check counts the fds


def test_a_plain_socket_to_pg_go_says_use_pg_net():
    def main():
        s = socket.socket()
        try:
            with pytest.raises(pg.EncodeError, match=r"pg\.net.*go_local"):
                pg.go(print, s)
            with pytest.raises(pg.EncodeError, match=r"pg\.net"):
                pg.Chan(1).send(s)
        finally:
            s.close()

    pg.run(main, procs=1)


def test_a_conn_from_an_earlier_run_is_not_in_runtime():
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        ln.close()
        return ln

    ln = pg.run(main, procs=1)

    def main2(ln):
        with pytest.raises(pg.NotInRuntime, match="earlier pg.run"):
            ln.accept()

    pg.run(main2, ln, procs=1)
    with pytest.raises(pg.NotInRuntime):
        pg.net.listen("127.0.0.1:0")


# ----------------------------------------------------------------------
# deadlines


def test_read_deadline_raises_then_fails_at_once_until_moved(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        s.set_read_deadline(time.time() + 0.1)
        t0 = time.monotonic()
        with pytest.raises(pg.net.DeadlineExceeded, match="i/o timeout") as ei:
            s.read()
        assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, pg.ParagoError)
        assert time.monotonic() - t0 >= 0.08
        c.write(b"data")
        pg.sleep(0.05)
        with pytest.raises(pg.net.DeadlineExceeded):
            s.read()  # data waits, but the deadline has passed: at once
        s.set_read_deadline(None)  # moved: the conn works again
        assert s.read() == b"data"
        s.set_deadline(time.time() - 1)  # a deadline in the past
        with pytest.raises(pg.net.DeadlineExceeded):
            s.write(b"x")
        for x in (s, c, ln):
            x.close()

    run(main)


def test_a_deadline_set_while_parked_applies(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        out = pg.Chan(1)

        def reader():
            try:
                s.read()
                out.send("read")
            except pg.net.DeadlineExceeded:
                out.send("deadline")

        pg.go_local(reader)
        pg.sleep(0.05)
        s.set_read_deadline(time.time() + 0.05)
        assert _recv_timeout(out, 5) == "deadline"
        for x in (s, c, ln):
            x.close()

    run(main)


def test_write_deadline_when_the_peer_does_not_read(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        c.set_write_deadline(time.time() + 0.2)
        with pytest.raises(pg.net.DeadlineExceeded):
            c.write(b"x" * 50_000_000)  # far more than the socket buffers hold
        for x in (s, c, ln):
            x.close()

    run(main)


def test_accept_deadline(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        ln.set_deadline(time.time() + 0.05)
        with pytest.raises(pg.net.DeadlineExceeded):
            ln.accept()
        ln.set_deadline(None)
        c = pg.net.dial(ln.addr)
        ln.accept().close()
        c.close()
        ln.close()

    run(main)


def test_dial_timeout_and_refused(run):
    def main():
        # a listener that never accepts, its backlog filled: SYNs are dropped
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        addr = "127.0.0.1:%d" % full.getsockname()[1]
        fillers = []
        try:
            t0 = time.monotonic()
            with pytest.raises(pg.net.DeadlineExceeded):
                for _ in range(64):
                    fillers.append(pg.net.dial(addr, timeout=0.3))
            assert time.monotonic() - t0 < 30
            with pytest.raises(pg.net.DeadlineExceeded):
                pg.net.dial(addr, timeout=0)
        finally:
            for f in fillers:
                f.close()
            full.close()
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        with pytest.raises(ConnectionRefusedError):
            pg.net.dial("127.0.0.1:%d" % port)

    run(main)


# ----------------------------------------------------------------------
# close, reset, bad input


def test_close_from_another_goroutine_wakes_a_parked_reader(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        out = pg.Chan(2)

        def reader():
            try:
                s.read()
            except pg.net.ClosedConnError as e:
                out.send(("closed", str(e), isinstance(e, OSError)))

        def acceptor():
            out.send(("loop ended", [x for x in ln]))

        pg.go_local(reader)
        pg.go_local(acceptor)
        pg.sleep(0.05)
        s.close()
        ln.close()
        got = sorted([_recv_timeout(out, 5), _recv_timeout(out, 5)])
        assert got == [("closed", "use of closed network connection", True), ("loop ended", [])]
        c.close()

    run(main)


def test_a_peer_reset_mid_read_is_connection_reset_in_that_reader_only(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        out = pg.Chan(1)

        def reader():
            try:
                s.read()
                out.send("no error")
            except ConnectionResetError:
                out.send("reset")

        pg.go_local(reader)
        pg.sleep(0.05)
        raw = socket.socket(fileno=os.dup(c.fileno()))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        c.close()  # linger 0: the close sends RST
        assert _recv_timeout(out, 5) == "reset"
        s.close()
        ln.close()

    run(main)


def test_bad_input(run):
    def main():
        for bad in ("nocolon", "host:port", "1.2.3.4:99999", "[::1", "[nothex]:80", "::1:80", "unix:"):
            with pytest.raises(ValueError, match="bad address"):
                pg.net.listen(bad)
            with pytest.raises(ValueError, match="bad address"):
                pg.net.dial(bad)
        ln = pg.net.listen("127.0.0.1:0")
        with pytest.raises(OSError) as ei:
            pg.net.listen(ln.addr)
        assert ei.value.errno == errno.EADDRINUSE
        c = pg.net.dial(ln.addr)
        with pytest.raises(ValueError, match="n must be >= 1, got 0"):
            c.read(0)
        with pytest.raises(ValueError, match="got -1"):
            c.read(-1)
        with pytest.raises(TypeError, match="bytes-like"):
            c.write("str")
        with pytest.raises(TypeError):
            c.set_deadline("soon")
        ln.accept().close()
        c.close()
        ln.close()
        with pytest.raises(pg.net.ClosedConnError):
            ln.accept()

    run(main)


# ----------------------------------------------------------------------
# serve


def _serve_handler(conn: pg.net.Conn) -> None:
    line = conn.makefile("rb").readline()
    if line.startswith(b"boom"):
        raise RuntimeError("handler failed on purpose")
    conn.write(b"%d %s" % (state.rt.p, line))


def _serve_main(port: int) -> dict:
    _ps_up()
    ctx, cancel = pg.context.with_cancel(pg.context.background())
    done = pg.Chan(1)

    def server():
        pg.net.serve("127.0.0.1:%d" % port, _serve_handler, ctx=ctx)
        done.send("stopped")

    pg.go_local(server)
    per_p: dict[int, int] = {}
    for i in range(40):
        for _ in range(200):
            try:
                c = pg.net.dial("127.0.0.1:%d" % port, timeout=5)
                break
            except ConnectionRefusedError:
                pg.sleep(0.01)
        if i == 3:
            c.write(b"boom\n")
            assert c.read() == b""  # the handler raised: its conn was closed
            c.close()
            continue
        c.write(b"req %d\n" % i)
        got = b""
        while True:
            b = c.read()
            if not b:
                break
            got += b
        c.close()
        p, echoed = got.split(b" ", 1)
        assert echoed == b"req %d\n" % i
        per_p[int(p)] = per_p.get(int(p), 0) + 1
    cancel()
    assert _recv_timeout(done, 10) == "stopped"
    with pytest.raises(ConnectionRefusedError):
        pg.net.dial("127.0.0.1:%d" % port)
    return per_p


def test_serve_on_every_p_keeps_serving_after_a_handler_raises(run, procs, capfd):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    # fork: the handler's traceback, printed by whichever P accepted, must
    # reach this process's stderr (a forkserver's children write to the
    # stderr it started with, which capfd does not see)
    per_p = run(_serve_main, port, start_method="fork")
    assert sum(per_p.values()) == 39
    err = capfd.readouterr().err
    assert "RuntimeError: handler failed on purpose" in err
    assert "_serve_handler" in err
    if procs == 2:
        assert len(per_p) == 2, f"served by {per_p} only"


# ----------------------------------------------------------------------
# seeing it; never a false Deadlock


def test_dump_shows_io_wait_with_fd_and_peer(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()

        def reader():
            try:
                s.read()
            except pg.net.ClosedConnError:
                pass

        pg.go_local(reader)
        pg.sleep(0.05)
        text = pg.debug.dump()
        s.close()
        c.close()
        ln.close()
        return text, c.local_addr

    text, peer = run(main)
    assert "[IO wait]:" in text
    assert f"peer {peer}]" in text


def _late_peer(port: int) -> None:
    time.sleep(1.0)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"finally")


def test_no_false_deadlock_while_goroutines_wait_on_the_network(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        th = threading.Thread(target=_late_peer, args=(int(ln.addr.rsplit(":", 1)[1]),))
        th.start()
        c = ln.accept()  # every goroutine parked here for a second: not a deadlock
        data = c.read()
        c.close()
        ln.close()
        th.join()
        return data

    assert run(main) == b"finally"


def test_pickling_a_conn_outside_a_send_does_not_move_it_and_a_thread_may_close_it(run):
    import pickle

    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(c)
        c.write(b"still mine")
        assert s.read() == b"still mine"
        out = pg.Chan(1)

        def reader():
            try:
                s.read()
            except pg.net.ClosedConnError:
                out.send("closed")

        pg.go_local(reader)
        pg.sleep(0.05)
        th = threading.Thread(target=s.close)
        th.start()
        th.join()
        assert _recv_timeout(out, 5) == "closed"
        c.close()
        ln.close()

    run(main)


def _fill_fd_table() -> list[int]:
    """dup until EMFILE (the soft limit lowered first, so it is quick)."""
    held = []
    try:
        while True:
            held.append(os.dup(0 if os.path.exists("/proc/self/fd/0") else 1))
    except OSError as e:
        assert e.errno == errno.EMFILE
    return held


@pytest.fixture
def low_nofile():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n_open = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n_open + 200), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_accept_with_a_full_fd_table_raises_emfile_then_works(low_nofile):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        pg.sleep(0.02)
        held = _fill_fd_table()
        try:
            with pytest.raises(OSError) as ei:
                ln.accept()
            assert ei.value.errno == errno.EMFILE
        finally:
            for fd in held:
                os.close(fd)
        ln.accept().close()
        c.close()
        ln.close()

    pg.run(main, procs=1)


def _answer(conn: pg.net.Conn) -> None:
    conn.write(b"served")


def test_serve_backs_off_on_emfile_and_recovers(low_nofile, capfd):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()

    def main():
        ctx, cancel = pg.context.with_cancel(pg.context.background())
        pg.go_local(pg.net.serve, "127.0.0.1:%d" % port, _answer, ctx=ctx)
        for _ in range(500):
            try:
                pg.net.dial("127.0.0.1:%d" % port).close()
                break
            except ConnectionRefusedError:
                pg.sleep(0.01)
        pg.sleep(0.05)
        # a non-blocking connect (loopback completes it at once, and even
        # cooperative I/O leaves it alone): this goroutine does not park, so
        # the server's accept runs only once the fd table is full
        c = socket.socket()
        c.setblocking(False)
        assert c.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
        held = _fill_fd_table()
        try:
            pg.sleep(0.3)
        finally:
            for fd in held:
                os.close(fd)
        c.settimeout(10)  # read on a pg.blocking thread: a real blocking call
        got = pg.blocking(c.recv, 100)
        c.close()
        cancel()
        return got

    assert pg.run(main, procs=1) == b"served"
    err = capfd.readouterr().err
    retries = re.findall(r"^pg\.net\.serve: accept error: .*Too many open files.*; retrying in (\d+)ms$", err, re.M)
    assert retries, err
    assert len(retries) < 15, f"{len(retries)} retries in 0.3 s: not backing off"
    assert [int(r) for r in retries[:3]] == [5, 10, 20]


def test_dial_resolves_a_name_off_the_hub(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        port = ln.addr.rsplit(":", 1)[1]
        try:
            c = pg.net.dial("localhost:" + port, timeout=10)
        except ConnectionRefusedError:
            ln.close()
            return "localhost is ::1 only here"
        s = ln.accept()
        c.write(b"hi")
        assert s.read() == b"hi"
        for x in (s, c, ln):
            x.close()
        with pytest.raises(OSError, match="lookup"):
            pg.net.dial("no-such-host.invalid:80", timeout=10)
        return "ok"

    assert run(main) in ("ok", "localhost is ::1 only here")


def test_trace_shows_network_waits(tmp_path, monkeypatch):
    import json

    path = tmp_path / "t.json"
    monkeypatch.setenv("PARAGO_TRACE", str(path))

    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()

        def writer():
            pg.sleep(0.05)
            c.write(b"x")

        pg.go_local(writer)
        assert s.read() == b"x"
        for x in (s, c, ln):
            x.close()
        return c.local_addr

    peer = pg.run(main, procs=1)
    data = json.loads(path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    waits = [e for e in events if e.get("name", "").startswith("IO wait: ")]
    assert any(e["name"].endswith(f"read, peer {peer}") and e["dur"] >= 20_000 for e in waits), waits


def test_a_conn_used_after_it_moved_is_closed_conn_error(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        ch = pg.Chan(2)
        ch.send(s)
        for op in (lambda: s.read(), lambda: s.write(b"x"), lambda: s.set_deadline(None)):
            with pytest.raises(pg.net.ClosedConnError, match="moved to another goroutine"):
                op()
        with pytest.raises(pg.EncodeError, match="ClosedConnError: .*moved to another goroutine"):
            ch.send(s)  # sending it again: nothing is enqueued
        s2 = ch.recv()
        c.write(b"after")
        assert s2.read() == b"after"
        for x in (s2, c, ln):
            x.close()

    run(main)


def test_listen_on_every_interface(run):
    def main():
        ln = pg.net.listen(":0")  # Go's ":port": every interface (dual-stack where IPv6 is)
        port = ln.addr.rsplit(":", 1)[1]
        assert ln.addr in (f"[::]:{port}", f"0.0.0.0:{port}")
        for addr in (f"127.0.0.1:{port}", f":{port}"):
            c = pg.net.dial(addr)
            s = ln.accept()
            c.write(b"any")
            assert s.read() == b"any"
            s.close()
            c.close()
        ln.close()

    run(main)


# ----------------------------------------------------------------------
# a move is committed only when its payload is delivered


def _pair() -> tuple[pg.net.Listener, pg.net.Conn, pg.net.Conn]:
    ln = pg.net.listen("127.0.0.1:0")
    c = pg.net.dial(ln.addr)
    return ln, c, ln.accept()


def _still_usable(s: pg.net.Conn, c: pg.net.Conn, tag: bytes) -> None:
    """s (the sender's object) talks both ways with its peer c."""
    c.write(tag)
    assert s.read() == tag
    s.write(tag + b"!")
    assert c.read() == tag + b"!"


def test_a_send_on_a_closed_channel_keeps_the_conn_with_the_sender(run):
    def main():
        ln, c, s = _pair()
        ch = pg.Chan(1)
        ch.close()
        with pytest.raises(pg.ClosedChannelError):
            ch.send(s)
        _still_usable(s, c, b"closed chan")
        with pytest.raises(pg.ClosedChannelError):
            ch.send((s, [1, 2]))  # inside another value
        _still_usable(s, c, b"again")
        # a sent conn's move still works after a revival
        ok = pg.Chan(1)
        ok.send(s)
        with pytest.raises(pg.net.ClosedConnError, match="moved"):
            s.read()
        s2 = ok.recv()
        _still_usable(s2, c, b"moved")
        for x in (s2, c, ln):
            x.close()

    run(main)


def _recv_send_back(ch: pg.Chan, back: pg.Chan) -> None:
    back.send(ch.recv())


def test_a_send_parked_then_closed_keeps_the_conn(run):
    def main():
        ln, c, s = _pair()
        ch = pg.Chan()  # unbuffered: the send parks until the close
        pg.after_func(0.05, ch.close)
        with pytest.raises(pg.ClosedChannelError):
            ch.send(s)
        _still_usable(s, c, b"parked")
        s.close()
        assert c.read() == b""  # the sender's close really closed the socket
        c.close()
        ln.close()

    run(main)


def test_a_select_send_case_that_loses_keeps_the_conn(run, procs):
    def main():
        _ps_up()
        ln, c, s = _pair()
        full = pg.Chan(1)
        full.send(None)  # never ready to send
        ready = pg.Chan(1)
        ready.send("x")
        for _ in range(3):
            i, v, ok = pg.select(pg.Send(full, s), pg.Recv(ready))
            assert (i, v, ok) == (1, "x", True)
            _still_usable(s, c, b"lost")
            ready.send("x")
            i, _, _ = pg.select(pg.Send(full, s), default=True)
            assert i == -1
            _still_usable(s, c, b"default")
        # and a Send case that wins moves it: across Ps through a goroutine
        ch, back = pg.Chan(), pg.Chan(1)
        pg.go(_recv_send_back, ch, back)
        i, _, _ = pg.select(pg.Send(ch, s), pg.Send(full, 1))
        assert i == 0
        with pytest.raises(pg.net.ClosedConnError, match="moved"):
            s.write(b"x")
        s2 = _recv_timeout(back)
        _still_usable(s2, c, b"won")
        for x in (s2, c, ln):
            x.close()

    run(main)


def test_send_many_that_fails_part_way_keeps_the_undelivered_conns(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        pairs = []
        for _ in range(3):
            c = pg.net.dial(ln.addr)
            pairs.append((ln.accept(), c))
        ch = pg.Chan(1)
        pg.after_func(0.1, ch.close)
        # the first is buffered; the second parks and sees the close
        with pytest.raises(pg.ClosedChannelError) as ei:
            ch.send_many([s for s, _ in pairs])
        assert ei.value.sent == 1
        for s, c in pairs[1:]:
            _still_usable(s, c, b"undelivered")
        s0 = ch.recv()  # the delivered one moved
        with pytest.raises(pg.net.ClosedConnError, match="moved"):
            pairs[0][0].read()
        _still_usable(s0, pairs[0][1], b"delivered")
        for s, c in pairs:
            s.close()
            c.close()
        s0.close()
        ln.close()

    run(main)


def test_an_encode_error_after_the_conn_keeps_it(run):
    def main():
        ln, c, s = _pair()
        with pytest.raises(pg.EncodeError):
            pg.Chan(1).send((s, threading.Lock()))
        _still_usable(s, c, b"encode error")
        for x in (s, c, ln):
            x.close()

    run(main)


def _drop_after_failed_send(addr: str) -> None:
    s = pg.net.dial(addr)
    ch = pg.Chan(1)
    ch.close()
    try:
        ch.send(s)
    except pg.ClosedChannelError:
        pass
    # s is dropped here: its undelivered socket is closed, not kept


def test_a_failed_send_whose_conn_is_dropped_closes_the_socket(run, procs):
    def main():
        _ps_up()
        ln = pg.net.listen("127.0.0.1:0")
        for _ in range(2 * pg.gomaxprocs()):
            pg.go(_drop_after_failed_send, ln.addr)
            c = ln.accept()
            c.set_read_deadline(time.time() + 20)
            assert c.read() == b""  # EOF: the dialer's socket was closed during the run
            c.close()
        ln.close()

    run(main)


# a conn in a buffered value of a channel that is dropped: its fd is closed
# at teardown (the leak check counts them); the payload keeps its reference
# on the move's anchor (see test_a_conn_never_received_is_closed_at_teardown)
@pytest.mark.arena_residue_ok
def test_a_conn_in_a_dropped_channel_is_closed_at_teardown(run, procs):
    def main():
        _ps_up()
        ln = pg.net.listen("127.0.0.1:0")
        cs = []
        for _ in range(3):
            cs.append(pg.net.dial(ln.addr))
            ch = pg.Chan(1)
            ch.send(ln.accept())
            del ch  # dropped with the conn inside
        for c in cs:
            c.close()
        ln.close()

    run(main)


_kept: list = []


def test_a_failed_send_whose_conn_outlives_the_run_leaves_nothing(run):
    """Neither the socket (the fd check) nor the move's anchor (the arena
    check): the P gives its reference back when it leaves the run."""

    def main():
        ln = pg.net.listen("127.0.0.1:0")
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        ch = pg.Chan(1)
        ch.close()
        for x in (s, ln):
            with pytest.raises(pg.ClosedChannelError):
                ch.send(x)
        _kept.extend((s, ln))  # never used again, alive after pg.run
        c.close()

    try:
        run(main)
        s, ln = _kept
        with pytest.raises(pg.ParagoError):
            s.read()
    finally:
        _kept.clear()


def test_a_listener_in_a_failed_send_accepts_again(run):
    def main():
        ln = pg.net.listen("127.0.0.1:0")
        ch = pg.Chan(1)
        ch.close()
        with pytest.raises(pg.ClosedChannelError):
            ch.send(ln)
        c = pg.net.dial(ln.addr)
        s = ln.accept()
        _still_usable(s, c, b"listener")
        for x in (s, c, ln):
            x.close()

    run(main)


def test_a_conn_whose_send_failed_can_be_sent_again_at_once(run, procs):
    def main():
        _ps_up()
        ln, c, s = _pair()
        closed = pg.Chan(1)
        closed.close()
        with pytest.raises(pg.ClosedChannelError):
            closed.send(s)
        ch, back = pg.Chan(), pg.Chan(1)
        pg.go(_recv_send_back, ch, back)
        ch.send(s)  # not touched in between: the failed move is cancelled here
        s2 = _recv_timeout(back)
        _still_usable(s2, c, b"second send")
        for x in (s2, c, ln):
            x.close()

    run(main)


# ----------------------------------------------------------------------
# a conn's registration is kept across its waits (netpoll's module doc)


def _conn_pair():
    ln = pg.net.listen("127.0.0.1:0")
    c = pg.net.dial(ln.addr)
    s = ln.accept()
    ln.close()
    return c, s


def test_a_conns_registration_is_kept_across_waits_and_goes_with_the_conn(run):
    def main():
        np = netpoll.poller(state.rt)
        c, s = _conn_pair()
        got = pg.Chan(1)

        def reader():
            got.send(s.read())

        for i in range(3):
            pg.go_local(reader)
            pg.sleep(0.02)  # parked: s's fd registered for reading
            c.write(b"%d" % i)
            assert got.recv() == b"%d" % i
            ent = np.fds.get(s.fileno())
            assert ent is not None and ent.rreg, "the registration went with the wait"
        fd = s.fileno()
        s.close()  # close_fd first: the registration goes before the fd
        assert fd not in np.fds
        c.close()
        # data that comes while nobody waits: the first readiness with no
        # waiter drops the registration (level-triggered epoll would spin)
        c, s = _conn_pair()
        pg.go_local(reader)
        pg.sleep(0.02)
        c.write(b"a")
        assert got.recv() == b"a"
        c.write(b"b")
        pg.sleep(0.05)
        assert s.fileno() not in np.fds
        assert s.read() == b"b"
        c.close()
        s.close()
        return True

    assert run(main)


def test_a_conn_dropped_unclosed_with_a_kept_registration_closes_and_its_fd_is_reusable(run):
    """The kept entry holds the socket open; the owner's death drops the
    registration first, then the socket: no fd leaks, and the next socket
    that gets the same fd number waits and wakes normally."""

    def main():
        np = netpoll.poller(state.rt)
        c, s = _conn_pair()
        got = pg.Chan(1)

        def reader(conn):
            got.send(conn.read())

        pg.go_local(reader, s)
        pg.sleep(0.02)
        c.write(b"x")
        assert got.recv() == b"x"
        fd = s.fileno()
        assert np.fds[fd].rreg
        del s
        gc.collect()
        assert fd not in np.fds
        with pytest.raises(OSError):
            os.fstat(fd)  # closed once the registration was gone
        assert c.read() == b""  # the peer sees the close
        c.close()
        reused = []
        for _ in range(4):  # new sockets take the lowest free numbers: fd among them
            c2, s2 = _conn_pair()
            reused.append((c2, s2))
        for c2, s2 in reused:
            pg.go_local(reader, s2)
            pg.sleep(0.01)
            c2.write(b"y")
            assert got.recv() == b"y"
        assert fd in {x.fileno() for pair in reused for x in pair}
        for c2, s2 in reused:
            c2.close()
            s2.close()
        return True

    assert run(main)
