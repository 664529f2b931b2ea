"""What interrupts a P's hub: arena flags, sysmon's signal, preemption.

    the arena header / this P's words      the hub (flags() once per round)
    ---------------------------------      ---------------------------------
    shutdown, panicking (P0), dumpreq  --> on_flags: begin_shutdown, the
                                           supervisor's turn, answer a dump
    sysmon's SIGUSR2 (sysmon.py), in   --> on_sysmon: raise Shutdown / the
      the hub thread, with SYS_* bits        failure in the running goroutine;
                                           SYS_PREEMPT: preempt.on_signal
    the hub acted on a flag            --> ack(ACK_*): sysmon stops signalling

Preemption (DESIGN "Time slices"): a request sets ``rt.attn``, the one
attribute the fast paths check; the next parago operation is a safe point
(attention -> yield_preempted: the goroutine goes to the back of the
hub's yielded queue).  Owns ``attn``, ``preempt_pending``, ``sliced`` and
``dump_seen``.  A mixin of sched.Runtime (RuntimeLike).
"""

from __future__ import annotations

from typing import Any

import greenlet

from .._errors import Shutdown
from .._shim import CONST
from . import dump, park, preempt
from .g import GreenletG, GState
from .types import RuntimeLike


class Signals:
    """Flags, sysmon signals and acks, preemption of one P (module doc)."""

    def _init_signals(self: RuntimeLike) -> None:
        self.dump_seen = 0
        # preemption: rt.attn is the one attribute the fast paths check
        # (a closed runtime, or a pending preemption request)
        self.attn = False
        self.preempt_pending = False
        self.sliced = False  # a goroutine was preempted in this round
        self.async_preempt = preempt.async_enabled()

    def flags(self: RuntimeLike) -> bool:
        u32 = self.arena.u32
        return bool(
            u32[self.i_shutdown]
            or (self.sup is not None and u32[self.i_panicking] == 2)
            or u32[self.i_dumpreq] != self.dump_seen
        )

    def on_flags(self: RuntimeLike) -> None:
        """Act on the arena's flags: shutdown, a recorded panic (P0), dumps."""
        u32 = self.arena.u32
        if u32[self.i_dumpreq] != self.dump_seen:
            self.answer_dump()
        if u32[self.i_shutdown] and not self.shutting_down:
            self.begin_shutdown()
        if self.sup is not None:
            self.sup.on_flags()

    def on_sysmon(self: RuntimeLike, bits: int, frame: Any) -> None:
        """sysmon's reasons (SYS_* bits): for SYS_SHUTDOWN / SYS_FAILURE, raise
        what the program's state calls for in the running goroutine (never
        into hub code); SYS_PREEMPT goes to ``preempt_signal`` (the time slice)."""
        pre = getattr(self, "preempt_signal", None) if bits & CONST["SYS_PREEMPT"] else None
        if bits & (CONST["SYS_SHUTDOWN"] | CONST["SYS_FAILURE"]) or (bits & CONST["SYS_PREEMPT"] and pre is None):
            gs = self.current
            if gs is not None and getattr(greenlet.getcurrent(), "gs", None) is gs:
                exc = self.sysmon_exception(gs)  # type: ignore[arg-type]
                if exc is not None:
                    raise exc
        if pre is not None:
            pre(frame)

    def ack(self: RuntimeLike, bit: int) -> None:
        """The hub acted on a flag (ACK_*): sysmon stops signalling for it."""
        self.arena.u32[self.i_ack] |= bit

    def sysmon_exception(self: RuntimeLike, gs: GState) -> BaseException | None:
        if self.sup is not None:
            return self.sup.sysmon_exception(gs)
        return Shutdown() if self.arena.u32[self.i_shutdown] else None

    def attention(self: RuntimeLike) -> None:
        """The fast paths' one check (``rt.attn``) found something: a closed
        runtime (the caller raises) or a preemption request (yield now: a
        parago operation is a safe point)."""
        if self._closed:
            return
        if self.preempt_pending:
            gs = getattr(greenlet.getcurrent(), "gs", None)
            if gs is not None and gs is self.current and gs.__class__ is GreenletG:
                self.yield_preempted(gs)
            else:
                self.preempt_pending = False
                self.attn = False

    def yield_preempted(self: RuntimeLike, gs: GState) -> None:
        """The running goroutine gives up the P for a time slice."""
        self.preempt_pending = False
        self.attn = self._closed
        self.sliced = True
        self.arena.q[self.i_npreempt] += 1
        if self.tracer is not None:
            self.tracer.preempt(gs.goid)
        self.push_yielded(gs)
        park.park(gs)

    def preempt_signal(self: RuntimeLike, frame: Any) -> None:
        preempt.on_signal(self, frame)

    def dump_text(self: RuntimeLike) -> str:
        return dump.dump_text(self)

    def answer_dump(self: RuntimeLike) -> None:
        dump.answer_dump(self)
