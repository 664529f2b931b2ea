"""A node as a home: the requests other nodes make of it, served here.

What a request asks (node.py's header lists the kinds):

    ("op", cls, off, gen, name, args, kw)  perform h.name(*args) here, in a
                                           goroutine (a blocked op is a parked
                                           goroutine here, woken by this node's
                                           own parking code)
    ("select", specs, timeout)             this home's part of a select across
                                           homes (select.py), in a goroutine
    ("go", fn, args, kw, site)             start this goroutine here
    ("steal", n)                           up to n unstarted goroutines (steal.py)
    ("hello", ...) / ("dir", d) / ("dump",) / ("quiet",) / ("stop",)

Runs in the hub thread (the transport's pump hands each batch to the loop);
answers go back through the transport.
"""

from __future__ import annotations

from typing import Any

from .._errors import ParagoError, Shutdown
from .._runtime import ops
from .._runtime.ops import views
from .wire import capture, xloads


class Home:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.rt = node.rt

    def dispatch(self, reqs: list) -> None:
        node, rt = self.node, self.rt
        if rt.closed:
            return
        tr = node.transport
        reply = tr.reply
        for rid, data in reqs:
            if rid.__class__ is int and rid < 0:  # an answer to one of our asks
                tr.resolve(-rid, data)
                continue
            if rid.__class__ is tuple:
                node.asks_done += 1
            try:
                msg = xloads(data)
            except BaseException as e:
                if rid.__class__ is tuple and rid[1] == 0:  # a goroutine sent here ("go"): it fails here
                    node.stolen += 1
                    node.stealer.undecodable(e)
                else:
                    reply(rid, (False, capture(e)))
                continue
            kind = msg[0]
            if kind == "op":
                _, cls, off, gen, name, args, kw = msg
                try:
                    h = self._local(cls, off, gen)
                except BaseException as e:
                    reply(rid, (False, capture(e)))
                    continue
                rt.spawn(self._serve, (rid, h, name, args, kw), {}, local=True, system=True, depth=2)
            elif kind == "select":
                rt.spawn(self._serve_select, (rid, msg[1], msg[2]), {}, local=True, system=True, depth=2)
            elif kind == "go":
                node.stolen += 1
                node.stealer.start_here(msg[1], msg[2], msg[3], msg[4])
            elif kind == "steal":
                reply(rid, (True, node.stealer.export(msg[1])))
            elif kind == "hello":
                if node.on_hello is not None:
                    node.on_hello(msg[1], msg[2], msg[3])
            elif kind == "dir":
                node.set_directory(msg[1])
                reply(rid, (True, None))
            elif kind == "dump":
                reply(rid, (True, rt.sup.collect_dump()))
            elif kind == "quiet":
                reply(rid, (True, node.quiet_report()))
            elif kind == "stop":
                node.stopping.set()
                if not node.stopped.done():
                    node.stopped.set_result(None)
        tr.flush()

    def _local(self, cls: type, off: int, gen: int) -> Any:
        """This node's handle for (off, gen), taking a reference for it if new."""
        rt = self.rt
        r = rt.handles.get(off)
        h = r() if r is not None else None
        if h is not None and h._gen == gen:
            return h
        a = rt.arena
        if views.obj_gen(a, off) != gen or views.obj_kind(a, off) == 0:
            raise ParagoError(f"a {cls.__name__} of node {self.node.name} was used after it was freed")
        ops.incref_many(rt, [off])
        return cls._make(rt, off, gen)  # type: ignore[attr-defined]  # a handle class

    def _serve(self, rid: Any, h: Any, name: str, args: tuple, kw: dict) -> None:
        """A goroutine here performing one remote operation."""
        try:
            if name[0] == "@":
                res = (True, getattr(h, name[1:]))
            else:
                res = (True, getattr(h, name)(*args, **kw))
        except Shutdown:
            raise
        except BaseException as e:
            res = (False, capture(e))
        self.node.transport.reply(rid, res)

    def _serve_select(self, rid: Any, specs: list, timeout: float) -> None:
        """A goroutine here: its part of a select across homes (select.py)."""
        from .select import select_here

        res: tuple[bool, Any]
        try:
            res = (True, select_here(specs, timeout))
        except Shutdown:
            raise
        except BaseException as e:
            res = (False, capture(e))
        self.node.transport.reply(rid, res)
