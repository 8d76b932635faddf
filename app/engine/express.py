"""The parse pool's express lane: one more worker, on a socket of its own, for the short tasks
a request waits for (reading a new expression).

pebble hands a task to its worker and back through three threads of the server (its task
scheduler, its message manager, and the future's callback onto the event loop) and two
messages back (an acknowledgement, then the result): 0.7 ms of a 2.2 ms cold request,
measured. The express lane writes the task on its socket from the event loop, and the event
loop reads the answer: one frame each way.

It adds to the pool and replaces nothing. It takes a task only while its worker is up, warm
and idle (``call`` answers None otherwise, and the pool's own workers take the task), so the
pool's fault handling still covers everything the lane declines. For the task it took:

- the worker computed for the whole budget (CPU seconds): ``TooComplex``, as the pool says;
- the worker died holding most of its memory cap: ``TooComplex.memory()``;
- anything else (killed from outside, crashed, stopped for ``STALL_SECONDS``, or past
  ``WALL_BUDGETS`` budgets of wall time): ``WorkerLost``, and the pool runs the task again;
- the request's deadline came: the request gets its 503 and the task goes on (its answer is
  dropped; the budget still stops it).

The worker runs a task past its first 10 ms at idle priority (``in_worker.TaskThreads``): a
compile bomb's reading takes only CPU that no request wants. A machine busy with requests
may starve such a task, so one that had under half a core for a second is handed to the
pool's own worker as well (the lane stays busy until its worker answers).

A lost worker is killed and a new one started, after a pause that grows while new workers
keep dying before they are ready. The first starts with the pool, whose first readiness waits
for it (``settled``): a server that says it is ready reads new expressions at full speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from app.engine.admission import Allowance, deadline_exceeded
from app.engine.faults import MEMORY_SHARE, WorkerLost, too_slow, usage
from app.engine.in_worker import FRAME_HEADER, express_worker
from app.errors import TooComplex

logger = logging.getLogger("nabla.workers")

#: Seconds between looks at the worker (its CPU, memory and state) while it has a task.
LOOK_SECONDS = 0.25
#: A task that has had under this share of a core since it started, for at least
#: ``HAND_OVER_SECONDS``, goes to the pool's own worker as well: the express worker runs a
#: task past its first 10 ms at idle priority (``in_worker.IDLE_AFTER_SECONDS``), which a
#: machine busy with requests may starve. The lane stays busy until its worker answers.
HAND_OVER_SECONDS = 1.0
HAND_OVER_SHARE = 0.5
#: Pause before starting a new worker, by how many in a row died before they were ready.
BACKOFF_SECONDS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 30.0)


@dataclass
class _Flight:
    """The task the worker has: its number, the future of its answer, when it started, the
    worker's CPU seconds then, the most memory seen since, and since when it is stopped."""

    number: int
    answer: asyncio.Future[tuple[str, Any]]
    started: float
    cpu_at_start: float
    peak_data: int = 0
    stopped_since: float | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class _Frames(asyncio.Protocol):
    """The server's end of the socket: whole frames to the lane, and the end of the worker."""

    def __init__(self, lane: Express) -> None:
        self.lane = lane
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= FRAME_HEADER:
            size = int.from_bytes(self.buffer[:FRAME_HEADER], "big")
            if len(self.buffer) < FRAME_HEADER + size:
                return
            frame = bytes(self.buffer[FRAME_HEADER:FRAME_HEADER + size])
            del self.buffer[:FRAME_HEADER + size]
            self.lane._received(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lane._gone(self)


class Express:
    """One express worker for the pool named ``name``, with its budget (CPU seconds) and
    memory cap; ``call`` runs a task there, or answers None when it cannot take one now."""

    def __init__(self, name: str, budget: float, memory_bytes: int,
                 wall_budgets: float, stall_seconds: float) -> None:
        self.name = name
        self.budget = budget
        self.memory_bytes = memory_bytes
        self.wall_budgets = wall_budgets
        self.stall_seconds = stall_seconds
        self.starts = 0  # workers started, for the logs and the tests
        self.taken = 0  # tasks it answered
        self.settled = False  # its first worker is ready, or failed to be
        self._process: Any = None
        self._frames: _Frames | None = None
        self._transport: asyncio.Transport | None = None
        self._pid: int | None = None  # set once the worker said it is ready
        self._cpu = 0.0  # the worker's CPU seconds at its last answer
        self._flight: _Flight | None = None
        self._numbers = 0
        self._deaths_in_a_row = 0
        self._start_at = 0.0  # not before then (the back-off)
        self._starting = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starter: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Up, warm, and without a task."""
        return self._pid is not None and self._flight is None

    async def call(self, func: Callable[..., Any], args: tuple[Any, ...],
                   allowance: Allowance | None) -> tuple[bool, Any] | None:
        """``run_task(func, args)`` in the express worker (``func`` importable by name), or
        None if it cannot take the task now; raises ``WorkerLost``, ``TooComplex`` or the
        deadline's 503."""
        if not self.idle:
            self.start_soon()
            return None
        assert self._transport is not None and self._pid is not None
        loop = asyncio.get_running_loop()
        self._numbers += 1
        data = pickle.dumps((self._numbers, func, args))
        # The worker's CPU seconds as it said with its last answer (it has idled since): no
        # read of /proc on the event loop for each task.
        flight = _Flight(self._numbers, loop.create_future(), time.monotonic(), self._cpu)
        flight.timer = loop.call_later(LOOK_SECONDS, self._look, flight)
        self._flight = flight
        self._transport.write(len(data).to_bytes(FRAME_HEADER, "big") + data)
        answer = asyncio.shield(flight.answer)
        if allowance is None:
            kind, value = await answer
        else:
            try:
                kind, value = await asyncio.wait_for(answer, max(0.0, allowance.remaining()))
            except TimeoutError:
                raise deadline_exceeded(allowance, f"a {self.name} worker", 0.0) from None
        if kind == "raised":
            raise value
        if kind == "handed over":
            return None
        self.taken += 1
        result: tuple[bool, Any] = value
        return result

    def _received(self, frame: bytes) -> None:
        # From our own worker, on a socket pair only the two processes hold (as pebble's).
        number, kind, value, self._cpu = pickle.loads(frame)  # noqa: S301
        if kind == "ready":
            self._pid = value
            self.settled = True
            self._deaths_in_a_row = 0
            logger.info("express worker ready", extra={"fields": {
                "pool": self.name, "pid": value}})
            return
        flight = self._flight
        if flight is None or flight.number != number:
            return  # the answer of a task given up on (its worker was replaced meanwhile)
        self._end(flight)
        if not flight.answer.done():
            flight.answer.set_result((kind, value))

    def _end(self, flight: _Flight) -> None:
        if flight.timer is not None:
            flight.timer.cancel()
        if self._flight is flight:
            self._flight = None

    def _look(self, flight: _Flight) -> None:
        """While the worker has ``flight``: stop it past its budget, or stopped, or stalled."""
        if self._flight is not flight or self._pid is None:
            return
        seen = usage(self._pid)
        if seen is None:
            return  # it is gone: the socket's end says so
        now = time.monotonic()
        flight.peak_data = max(flight.peak_data, seen.data_bytes)
        if seen.state == "T":
            flight.stopped_since = flight.stopped_since or now
        else:
            flight.stopped_since = None
        cpu = seen.cpu_seconds - flight.cpu_at_start
        fault: Exception | None = None
        if cpu >= self.budget:
            fault = too_slow(self.name, self.budget)
        elif flight.stopped_since is not None and now - flight.stopped_since >= self.stall_seconds:
            fault = WorkerLost(f"{self.name} express worker pid {self._pid} is stopped")
        elif now - flight.started >= self.wall_budgets * self.budget:
            fault = WorkerLost(f"{self.name} express worker pid {self._pid} ran out of its "
                               f"{self.budget:g} s budget with {cpu:.1f} s of CPU")
        if fault is None:
            elapsed = now - flight.started
            if (elapsed >= HAND_OVER_SECONDS and cpu < HAND_OVER_SHARE * elapsed
                    and not flight.answer.done()):
                flight.answer.set_result(("handed over", None))  # the worker keeps it
            flight.timer = asyncio.get_running_loop().call_later(LOOK_SECONDS, self._look,
                                                                 flight)
            return
        self._fail(flight, fault)
        self._replace(f"{fault}")

    def _fail(self, flight: _Flight, error: Exception) -> None:
        self._end(flight)
        if not flight.answer.done():
            flight.answer.set_result(("raised", error))

    def _gone(self, frames: _Frames) -> None:
        """The worker's end of the socket closed: it died (or was replaced)."""
        if frames is not self._frames:
            return  # an old worker's socket, closed after its replacement started
        flight, pid = self._flight, self._pid
        if flight is not None:
            seen = usage(pid) if pid else None
            peak = max(flight.peak_data, seen.data_bytes if seen else 0)
            memory = self.memory_bytes > 0 and peak >= MEMORY_SHARE * self.memory_bytes
            self._fail(flight, TooComplex.memory() if memory else WorkerLost(
                f"{self.name} express worker pid {pid} died"))
        self.settled = True
        if not self._closed:
            self._deaths_in_a_row += 1
            self._replace("its worker died")

    def _replace(self, reason: str) -> None:
        """Kill the worker (if it is still there) and start another after the back-off."""
        logger.warning("express worker replaced", extra={"fields": {
            "pool": self.name, "pid": getattr(self._process, "pid", None), "reason": reason}})
        self._stop_worker()
        pause = BACKOFF_SECONDS[min(self._deaths_in_a_row, len(BACKOFF_SECONDS) - 1)]
        self._start_at = time.monotonic() + pause
        asyncio.get_running_loop().call_later(pause, self.start_soon)

    def _detach(self) -> tuple[Any, asyncio.Transport | None]:
        """Forget the worker; its process and transport, to end."""
        process, transport = self._process, self._transport
        self._process = self._frames = self._transport = None
        self._pid = None
        return process, transport

    def _stop_worker(self) -> None:
        process, transport = self._detach()
        if process is not None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            # Reaped off the event loop: a SIGKILLed process is gone within milliseconds.
            asyncio.get_running_loop().run_in_executor(None, process.join, 10)
        if transport is not None:
            transport.close()

    def start_soon(self) -> None:
        """Start a worker unless one is up or starting, or the back-off has not passed (the
        pool's watchdog calls this, and the lane starts again itself)."""
        if (self._closed or self._starting or self._process is not None
                or time.monotonic() < self._start_at):
            return
        self._starting = True
        self._loop = asyncio.get_running_loop()
        self._starter = self._loop.create_task(self._start())

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        process = context.Process(target=express_worker, args=(theirs, self.memory_bytes),
                                  name=f"nabla-{self.name}-express", daemon=True)
        try:
            await loop.run_in_executor(None, process.start)  # spawning takes milliseconds
            theirs.close()
            _, frames = await loop.create_unix_connection(lambda: _Frames(self), sock=ours)
        except Exception:
            logger.exception("express worker failed to start", extra={"fields": {
                "pool": self.name}})
            ours.close()
            theirs.close()
            self.settled = True
            self._deaths_in_a_row += 1
            self._start_at = time.monotonic() + BACKOFF_SECONDS[-1]
            return
        finally:
            self._starting = False
        self.starts += 1
        self._process, self._frames, self._transport = process, frames, frames.transport
        if self._closed:
            self._close_on_loop()
            _end_process(process)

    def close(self) -> None:
        """Stop the worker (from any thread: the pools are closed off the event loop too); a
        task it has ends with ``WorkerLost``."""
        self._closed = True
        process = self._process
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                self._close_on_loop()
            else:
                loop.call_soon_threadsafe(self._close_on_loop)
        if process is not None:
            _end_process(process)

    def _close_on_loop(self) -> None:
        if self._flight is not None:
            self._fail(self._flight, WorkerLost(f"the {self.name} workers are stopping"))
        _, transport = self._detach()  # the process is ended by ``close``'s thread
        if transport is not None:
            transport.close()


def _end_process(process: Any) -> None:
    """SIGTERM (which a worker obeys from the server only), then SIGKILL."""
    process.terminate()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)
