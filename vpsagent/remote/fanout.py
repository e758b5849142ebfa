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
    commands stop), running ones are waited for (bounded), then KeyboardInterrupt is
    re-raised with the outcomes so far on `.outcomes`.
    """
    check_limits(forks, serial, max_fail)
    outcomes: dict[str, Outcome[T]] = {n: Outcome(n) for n in names}
    order = list(dict.fromkeys(names))
    batches = [order[i:i + serial] for i in range(0, len(order), serial)] if serial else [order]
    failures = 0
    stop = threading.Event()

    def one(name: str) -> Outcome[T]:
        o = outcomes[name]
        try:
            o.value = work(name)
        except Exception as exc:  # noqa: BLE001 - recorded per server, the others go on
            o.error = exc
        return o

    pool = ThreadPoolExecutor(max_workers=min(forks, max(1, len(order))), thread_name_prefix="fanout")
    started: list[str] = []
    try:
        for batch in batches:
            if stop.is_set():
                break
            pending: set[Future[Outcome[T]]] = set()
            queue = list(batch)
            while queue or pending:
                while queue and len(pending) < forks and not stop.is_set():
                    if max_fail is not None and failures >= max_fail:
                        stop.set()
                        break
                    name = queue.pop(0)
                    started.append(name)
                    pending.add(pool.submit(one, name))
                if not pending:
                    break
                # a timeout so the main thread stays responsive to Ctrl-C
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    o = fut.result()
                    if failed(o):
                        failures += 1
                    if on_done is not None:
                        on_done(o)
            if max_fail is not None and failures >= max_fail:
                stop.set()
    except KeyboardInterrupt as exc:
        stop.set()
        if on_interrupt is not None:
            on_interrupt()
        _drain(pool)
        for n in order:
            if n not in started:
                outcomes[n].skipped = True
        exc.outcomes = [outcomes[n] for n in order]  # type: ignore[attr-defined]
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for n in order:
        if n not in started:
            outcomes[n].skipped = True
    return [outcomes[n] for n in order]


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
