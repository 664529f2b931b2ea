"""Process lifecycle: pg.run, the P processes, teardown, death in both directions.

    P0 (the caller of pg.run)                       P1 .. Pn-1
    ------------------------------------------      -----------------------------
    memfd arena, n eventfds, death pipe (r, w)
    start Ps (fork | forkserver | spawn) ------->   attach arena, own loop, hub
    main = goroutine 1 on P0's hub                  schedule() until shutdown
    C watch: a pidfd per P (WorkerLost)             C watch: death pipe EOF -> _exit
    main returns / fails:
      arena.shutdown = 1, wake every P  -------->   unwind goroutines (Shutdown),
      unwind P0's goroutines                        flush stdio, os._exit(0)
      join Ps (grace, then SIGKILL)
      close loop, arena, fds; raise or return

Both death watches are C threads (deathwatch.py, shm/watch.c): they need
neither the GIL nor a hub, so a P0 whose main thread waits on a lock held
by a dead P still learns of the death (PG_LOST -> WorkerLost), and a P
stuck anywhere still exits when P0 is gone.  Every lock a process takes is
tagged with its P index (pg_set_self): that is what PG_LOST is read from.

Nothing is named in /dev/shm; every fd is closed by the time pg.run returns.
The arena's memfd and the eventfds travel to spawned/forkserver Ps through
multiprocessing's own fd passing (DupFd), and are inherited on fork.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.reduction
import os
import random
import signal
import sys
import threading
import time
from typing import Any, Callable

import greenlet

from .._errors import ParagoError, WorkerLost
from .._shim import CONST, MAXP, lib, status, views
from .._shim.arena import Arena, default_size
from . import deathwatch, failure, profile, race, report, schedtrace, state, trace, vclock
from . import leaks as leakcheck
from .procs_util import usable_cpus
from .sched import Runtime
from .supervisor import Supervisor
from .sysmon import Sysmon

GRACE = 1.0
LOST_GRACE = 0.1  # a lost P aborted the run (Go would crash): the others get less time to unwind
START_METHODS = ("fork", "forkserver", "spawn")


class _Fd:
    """An fd handed to a P: inherited on fork, passed by multiprocessing otherwise."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple:
        return (_Fd._rebuild, (multiprocessing.reduction.DupFd(self.fd),))

    @staticmethod
    def _rebuild(dup: Any) -> "_Fd":
        return _Fd(dup.detach())


def default_procs() -> int:
    env = os.environ.get("PARAGO_MAXPROCS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"PARAGO_MAXPROCS must be an int >= 1, got {env!r}") from None
        if n < 1:
            raise ValueError(f"PARAGO_MAXPROCS must be >= 1, got {n}")
        return min(n, MAXP)
    return min(usable_cpus(), MAXP)


# ----------------------------------------------------------------------
# a P's entry point (P1 .. Pn-1)


def p_main(
    p: int, nprocs: int, arena_fd: _Fd, wakefds: list[_Fd], death: _Fd, close_fds: list[int], nonce: int, settings: dict
) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        arena = Arena.attach(arena_fd.fd)
        if settings.get("synctest"):
            vclock.bind(arena)  # before this P's sysmon starts
        lib.pg_set_self(p)
        deathwatch.watch_parent(arena, death.fd)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        rt = Runtime(arena, p, nprocs, nonce, [w.fd for w in wakefds], settings)
        state.rt = rt
        if settings.get("cooperative_io"):
            from . import coop

            coop.install()  # this P's process: the standard library's waits park goroutines
        deathwatch.install_lost_handler(rt)
        sysmon = Sysmon(rt)
        rt.arm()
        with report.line_buffered():  # each line reaches a pipe when printed, in order across Ps
            rt.loop.run_forever()
        sysmon.stop()  # its timers' references too
        rt.release_arena()
        rt.write_diagnostics()
        lib.pg_p_leave(rt.base, p)  # holds no lock from here on: gone for every locker
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# ----------------------------------------------------------------------
# pg.run


def _check_procs(procs: Any) -> int:
    if procs is None:
        return default_procs()
    if isinstance(procs, bool) or not isinstance(procs, int):
        raise TypeError(f"procs must be an int, got {type(procs).__name__}")
    if procs < 1:
        raise ValueError(f"procs must be >= 1, got {procs}")
    if procs > MAXP:
        raise ValueError(f"procs must be <= {MAXP}, got {procs}")
    return procs


def run(
    main: Callable, *args: Any, procs: int | None = None, start_method: str | None = None, synctest: bool = False,
    cooperative_io: bool = False,
    leaks: str | None = None,
) -> Any:
    if os.environ.get("_PARAGO_IN_P") == "1":
        raise RuntimeError(
            "pg.run was called while a P process imported the main module: put the call "
            "under `if __name__ == '__main__':` (spawned Ps re-import the script, as with multiprocessing)"
        )
    if not callable(main):
        raise TypeError(f"pg.run: main must be callable, got {type(main).__name__}")
    if not sys.platform.startswith("linux"):
        raise ParagoError("parago needs Linux (memfd, futex, eventfd)")
    if threading.current_thread() is not threading.main_thread():
        raise ParagoError("pg.run must be called from the main thread")
    if state.rt is not None:
        raise ParagoError("pg.run cannot be nested: this process is already running a parago program")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ParagoError("pg.run cannot be called inside a running event loop")
    nprocs = _check_procs(procs)
    if not isinstance(cooperative_io, bool):
        raise TypeError(f"cooperative_io must be a bool, got {type(cooperative_io).__name__}")
    coop_env = os.environ.get("PARAGO_COOPERATIVE_IO", "")
    if coop_env not in ("", "0", "1"):
        raise ValueError(f"PARAGO_COOPERATIVE_IO must be 0 or 1, got {coop_env!r}")
    if start_method is None:
        start_method = os.environ.get("PARAGO_START_METHOD") or (
            "fork" if threading.active_count() == 1 else "forkserver"
        )
    if start_method not in START_METHODS:
        raise ValueError(f"start_method must be one of {', '.join(START_METHODS)}, got {start_method!r}")
    leak_mode = leakcheck.check_mode(leaks)
    settings = {
        "start_method": start_method,
        "race": os.environ.get("PARAGO_RACE") == "1",
        "trace": os.environ.get("PARAGO_TRACE") or None,
        "cpuprofile": os.environ.get("PARAGO_CPUPROFILE") or None,
        "synctest": synctest,  # pg.synctest.run: the timer clock is virtual (vclock.py)
        # coop.py in every P: the standard library's blocking calls park plain goroutines
        "cooperative_io": cooperative_io or coop_env == "1",
    }
    profile.from_env(settings)  # every PARAGO_*PROFILE path, checked now (not at the end)
    nonce = random.getrandbits(63) | 1
    arena = Arena.create(default_size(), nprocs, nonce)
    lib.pg_set_self(0)  # P0's locks carry its index (each P re-tags at attach)
    watch = None
    fds: list[int] = []
    procs_started: list[Any] = []
    rt = None
    normal_end = False  # main returned and nothing failed: the arena leak check applies
    old_handlers: dict = {}
    trace_stop = None
    sysmon = None
    try:
        if synctest:
            vclock.bind(arena, start=True)  # before any P or sysmon exists
        wakefds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(nprocs)]
        fds.extend(wakefds)
        death_r, death_w = os.pipe2(os.O_CLOEXEC)
        fds.extend((death_r, death_w))
        ctx = multiprocessing.get_context(start_method)
        os.environ["_PARAGO_IN_P"] = "1"
        try:
            for p in range(1, nprocs):
                proc = ctx.Process(  # type: ignore[attr-defined]
                    target=p_main,
                    args=(
                        p,
                        nprocs,
                        _Fd(arena.fd),
                        [_Fd(w) for w in wakefds],
                        _Fd(death_r),
                        [death_w] if start_method == "fork" else [],
                        nonce,
                        settings,
                    ),
                    name=f"parago-P{p}",
                    daemon=False,
                )
                proc.start()
                procs_started.append(proc)
        finally:
            os.environ.pop("_PARAGO_IN_P", None)
        _await_ps(arena, procs_started)
        # main starts now: the Ps that have not scheduled yet count as young
        # from here (shm/sched.c "Placement"), not from when they were forked
        young = time.monotonic_ns() + CONST["START_GRACE_NS"]
        for p in range(1, nprocs):
            views.p_set(arena, p, "lastsched", young)  # (a P's own findRunnable may overwrite it: fine)
        rt = Runtime(arena, 0, nprocs, nonce, wakefds, settings)
        Supervisor(rt, procs_started)  # P0's duties: rt.sup
        state.rt = rt
        if settings["cooperative_io"]:
            from . import coop

            coop.install()  # undone in the finally below: code after pg.run is unchanged
        deathwatch.install_lost_handler(rt)
        watch = deathwatch.P0Watch(rt, procs_started)  # after the wakefds are set: it writes them
        old_handlers = _install_signals(rt)
        sysmon = Sysmon(rt)
        period, detail = schedtrace.from_env()
        if period > 0:
            trace_stop = schedtrace.start(rt, period, detail)
        off = lib.pg_go(rt.base, 0, None, 0, 1, 0, rt.intern_site("pg.run"), 0, None, 0, None)
        rt.main_off = off
        rt.local_fns[off] = (main, args, {})
        rt.arm()
        try:
            with report.line_buffered():  # each line reaches a pipe when printed, in order across Ps
                rt.loop.run_forever()
        except BaseException as e:  # raised out of the loop by a signal handler
            rt.sup.hub_error = rt.sup.hub_error or e
        leaked = None
        if leak_mode and rt.sup.hub_error is None and rt.sup.main_exc is None and failure.recorded(rt) is None:
            leaked = leakcheck.at_exit(rt)  # before teardown unwinds them
        _teardown(rt)
        if rt.sup.hub_error is not None:
            raise rt.sup.hub_error
        race.remember(race.count(rt))
        rt.write_diagnostics()
        if settings["trace"]:
            trace.merge(settings["trace"], nprocs)  # type: ignore[arg-type]
        profile.merge_all(settings, nprocs)
        exc = failure.recorded(rt)
        if exc is None:
            exc = rt.sup.main_exc
        if exc is not None:
            raise exc
        normal_end = True
        if leaked is not None:
            if leak_mode == "error":
                raise leaked
            leakcheck.warn(leaked)
        return rt.sup.main_result
    finally:
        if trace_stop is not None:
            trace_stop.set()
        sup = rt.sup if rt is not None else None
        if sup is not None:
            sup.tearing_down = True  # a SIGINT / SIGTERM now is raised at the end (_on_interrupt)
        if sysmon is not None:
            # bounded steps (signal handlers run between them); a signal ends the wait
            sysmon.stop(give_up=lambda: sup is not None and sup.teardown_signal is not None)
        # a sysmon thread not joined may still read the arena: nothing is
        # freed and the arena stays mapped
        abandoned = sysmon is not None and sysmon.abandoned
        _restore_signals(old_handlers)
        if settings["race"]:
            race.uninstall()  # the checker traced this thread (race.reset): code after pg.run runs untraced
        if watch is not None:
            watch.stop()  # before _release closes the sentinels and eventfds it watches and writes
        status.set_lost_handler(None)
        lib.pg_set_self(-1)
        if settings["cooperative_io"]:
            from . import coop

            coop.uninstall()
        vclock.unbind()  # after sysmon stopped, before the arena is unmapped
        _release(rt, arena, procs_started, fds, normal_end and not abandoned, keep_mapped=abandoned)
        if sup is not None and sup.teardown_signal is not None:
            raise sup.teardown_signal  # DESIGN "Signals": KeyboardInterrupt from pg.run


def _await_ps(arena: Arena, procs: list, timeout: float = 60.0) -> None:
    """Wait until every P has attached (published its pid), so main starts
    with every P able to steal; a P that dies while starting is WorkerLost."""
    deadline = time.monotonic() + timeout
    for i, proc in enumerate(procs, start=1):
        idx = views.p_index(i, "pid")
        while not arena.u32[idx]:
            if not proc.is_alive():
                hint = ""
                if proc.exitcode == 1 and getattr(proc, "_start_method", "fork") != "fork":
                    hint = (
                        "; if the script calls pg.run when imported, put that call under "
                        "`if __name__ == '__main__':` (spawn/forkserver Ps import the main module)"
                    )
                raise WorkerLost(i, f"exit status {proc.exitcode} while starting{hint}", "none")
            if time.monotonic() > deadline:
                raise WorkerLost(i, f"did not start within {timeout:.0f} s", "none")
            time.sleep(0.0005)


def _teardown(rt: Runtime) -> None:
    """Unwind every goroutine on every P; Ps get GRACE seconds to exit
    (LOST_GRACE when a P was lost: WorkerLost must reach the caller fast)."""
    rt.sup.deadlock.close()
    rt.sup.tearing_down = True  # SIGINT / SIGTERM from here on: see _on_interrupt
    a = rt.arena
    a.u32[rt.i_shutdown] = 1
    lib.pg_wake_all(rt.base)
    deadline = time.monotonic() + (LOST_GRACE if isinstance(failure.recorded(rt), WorkerLost) else GRACE)
    rt.begin_shutdown()

    async def drain() -> None:
        while time.monotonic() < deadline and rt.sup.teardown_signal is None:
            live = [g for g in rt.gtable.values() if g is not rt.main_gs]
            if not live and not rt.local_ready:
                return
            rt.arm()
            await asyncio.sleep(0.001)

    try:
        rt.loop.run_until_complete(drain())
    except BaseException:
        pass
    for proc in rt.sup.procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in rt.sup.procs:
        if proc.is_alive():
            proc.kill()
    for proc in rt.sup.procs:
        proc.join(2.0)
    # test hook (PARAGO_DEBUG=teardownhold=MS): hold P0 here, the other Ps
    # gone and P0's sysmon still running -- the window of a timer due while
    # Ps leave (tests/integration/test_teardown.py)
    hold = schedtrace.parse_debug(os.environ.get("PARAGO_DEBUG")).get("teardownhold", 0)
    if hold > 0:
        time.sleep(hold / 1000)


def _describe_leak(arena: Arena) -> str:
    """The blocks a run left in its arena, by size, with the first word of
    each (an object's kind, a G's goid): for the leak check's message."""
    by_size: dict[int, list[int]] = {}
    for off, size in views.live_blocks(arena):
        by_size.setdefault(size, []).append(arena.u32[off // 4])
    return "; ".join(f"{len(w)} x {size} B (first words {sorted(set(w))[:8]})" for size, w in sorted(by_size.items()))


_PINNED: list[memoryview] = []  # arenas a thread not joined may still read (never unmapped)


def _release(
    rt: Any, arena: Arena, procs: list, fds: list[int], normal_end: bool = False, keep_mapped: bool = False
) -> None:
    # read before the kills and closes below; a failed run (panic, deadlock,
    # a lost P) leaves goroutines anywhere: only a normal end is measured
    clean = normal_end and all(proc.exitcode == 0 for proc in procs)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
        try:
            proc.close()
        except Exception:
            pass
    try:
        if rt is not None:
            if clean:
                # every P left the run cleanly: like Go, the goroutines never
                # started never run (their payloads' references go back); what
                # the arena still holds after that was leaked
                lib.pg_drop_unstarted(rt.base)
                rt.release_arena()
                state.last_inuse = views.hdr(arena, "inuse")
                state.last_leaked = _describe_leak(arena) if state.last_inuse else ""
            else:
                state.last_inuse = None
            rt.close()
    finally:
        state.rt = None  # whatever happened, a later pg.run is not "nested"
        if keep_mapped:
            _PINNED.append(memoryview(arena.mm))  # an export: arena.close() leaves the mapping
        arena.close()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ----------------------------------------------------------------------
# signals (P0)

_SIGNALS = ("SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1")


def _on_interrupt(signum: int, frame: Any) -> None:
    rt = state.rt
    if rt is not None and rt.sup is not None and rt.sup.tearing_down:
        # teardown: raised from pg.run once the teardown let go of what it
        # can (never from the middle of it); its waits end early for it
        rt.sup.teardown_signal = rt.sup.teardown_signal or KeyboardInterrupt()
        return
    if rt is None or rt.main_gs is None or rt.sup is None or rt.sup.main_done:
        raise KeyboardInterrupt
    if getattr(greenlet.getcurrent(), "gs", None) is rt.main_gs:
        raise KeyboardInterrupt
    rt.sup.interrupt_main(KeyboardInterrupt())


def _on_dump(signum: int, frame: Any) -> None:
    rt = state.rt
    if rt is None:
        return
    text = rt.sup.collect_dump()
    sys.stderr.write(f"SIGQUIT: goroutine dump\n\n{text}\n" if signum == signal.SIGQUIT else f"{text}\n")
    sys.stderr.flush()
    if signum == signal.SIGQUIT:
        for proc in rt.sup.procs:
            try:
                proc.kill()
            except Exception:
                pass
        sys.stdout.flush()
        os._exit(2)


def _install_signals(rt: Runtime) -> dict:
    old = {}
    for name in _SIGNALS:
        sig = getattr(signal, name)
        try:
            old[sig] = signal.signal(sig, _on_interrupt if name in ("SIGINT", "SIGTERM") else _on_dump)
        except (ValueError, OSError):
            pass
    return old


def _restore_signals(old: dict) -> None:
    for sig, h in old.items():
        try:
            signal.signal(sig, h)
        except (ValueError, OSError, TypeError):
            pass
