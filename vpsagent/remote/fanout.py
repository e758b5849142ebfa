"""Running one piece of work on many servers: parallel (`forks`), in batches (`serial`),
stopping new starts after `max_fail` failures, and a clean stop on Ctrl-C.

The work is a plain callable `work(name) -> T`; exceptions it raises are captured per
server (an unreachable server does not stop the others). Nothing here prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from vpsagent.errors import InvalidInput

T = TypeVar("T")
# Commands on servers mostly wait on the network: 64 at once costs little and keeps a
# 50-server run to one wave (Fabric's ThreadingGroup uses a thread per host).
DEFAULT_FORKS = 64
MAX_FORKS = 256
# After Ctrl-C, how long to wait for running commands to stop and their rows to be
# completed before giving up on them (a second Ctrl-C gives up at once).
STOP_WAIT_S = 15.0


@dataclass
class Outcome(Generic[T]):
    name: str
    value: T | None = None
    error: BaseException | None = None
    skipped: bool = False  # never started: --max-fail reached or interrupted first


def check_limits(forks: int, serial: int | None, max_fail: int | None) -> None:
    if forks < 1 or forks > MAX_FORKS:
        raise InvalidInput(f"--forks must be between 1 and {MAX_FORKS}")
    if serial is not None and serial < 1:
        raise InvalidInput("--serial must be at least 1")
    if max_fail is not None and max_fail < 1:
        raise InvalidInput("--max-fail must be at least 1")


class FanOutInterrupted(KeyboardInterrupt, Generic[T]):
    """Ctrl-C during `fan_out`: still a KeyboardInterrupt, carrying the outcomes so far."""

    def __init__(self, outcomes: list[Outcome[T]]) -> None:
        super().__init__()
        self.outcomes = outcomes


class _Run(Generic[T]):
    """One fan_out call: who has started, how many failed, and whether to start more."""

    def __init__(self, names: Sequence[str], work: Callable[[str], T], forks: int,
                 max_fail: int | None, failed: Callable[[Outcome[T]], bool],
                 on_done: Callable[[Outcome[T]], None] | None) -> None:
        self.outcomes: dict[str, Outcome[T]] = {n: Outcome(n) for n in names}
        self.order = list(dict.fromkeys(names))
        self.work, self.forks, self.max_fail = work, forks, max_fail
        self.failed, self.on_done = failed, on_done
        self.started: list[str] = []
        self.failures = 0
        self.stop = threading.Event()

    def one(self, name: str) -> Outcome[T]:
        o = self.outcomes[name]
        try:
            o.value = self.work(name)
        except Exception as exc:  # noqa: BLE001 - recorded per server, the others go on
            o.error = exc
        return o

    def too_many_failed(self) -> bool:
        return self.max_fail is not None and self.failures >= self.max_fail

    def batch(self, pool: ThreadPoolExecutor, names: list[str]) -> None:
        """Run `names`, at most `forks` at once, until done or no new start is allowed."""
        pending: set[Future[Outcome[T]]] = set()
        queue = list(names)
        while queue or pending:
            while queue and len(pending) < self.forks and not self.stop.is_set():
                if self.too_many_failed():
                    self.stop.set()
                    break
                name = queue.pop(0)
                self.started.append(name)
                pending.add(pool.submit(self.one, name))
            if not pending:
                break
            # a timeout so the main thread stays responsive to Ctrl-C
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                self.finished(fut.result())

    def finished(self, o: Outcome[T]) -> None:
        if self.failed(o):
            self.failures += 1
        if self.on_done is not None:
            self.on_done(o)

    def results(self) -> list[Outcome[T]]:
        """Every outcome in the order of the names; those never started are skipped."""
        for n in self.order:
            if n not in self.started:
                self.outcomes[n].skipped = True
        return [self.outcomes[n] for n in self.order]


def fan_out(
    names: Sequence[str],
    work: Callable[[str], T],
    *,
    forks: int = DEFAULT_FORKS,
    serial: int | None = None,
    max_fail: int | None = None,
    failed: Callable[[Outcome[T]], bool] = lambda o: o.error is not None,
    on_done: Callable[[Outcome[T]], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> list[Outcome[T]]:
    """Run `work` for every name; outcomes come back in the order of `names`.

    Ctrl-C: no new server starts, `on_interrupt()` is called (it should make running
    commands stop), running ones are waited for (bounded), then `FanOutInterrupted` (a
    KeyboardInterrupt) is raised with the outcomes so far on `.outcomes`.
    """
    check_limits(forks, serial, max_fail)
    run = _Run(names, work, forks, max_fail, failed, on_done)
    order = run.order
    batches = [order[i:i + serial] for i in range(0, len(order), serial)] if serial else [order]
    pool = ThreadPoolExecutor(max_workers=min(forks, max(1, len(order))), thread_name_prefix="fanout")
    try:
        for batch in batches:
            if run.stop.is_set():
                break
            run.batch(pool, batch)
            if run.too_many_failed():
                run.stop.set()
    except KeyboardInterrupt as exc:
        run.stop.set()
        if on_interrupt is not None:
            on_interrupt()
        _drain(pool)
        raise FanOutInterrupted(run.results()) from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return run.results()


def _drain(pool: ThreadPoolExecutor) -> None:
    """Wait (bounded) for running workers after Ctrl-C; a second Ctrl-C stops waiting."""
    import time

    deadline = time.monotonic() + STOP_WAIT_S
    threads = list(getattr(pool, "_threads", ()))
    pool.shutdown(wait=False, cancel_futures=True)
    try:
        for t in threads:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            t.join(left)
    except KeyboardInterrupt:
        pass
