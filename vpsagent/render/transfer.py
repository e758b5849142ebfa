"""How `vpsagent cp` looks: a progress bar on stderr while bytes move (only on a terminal,
never under --json or off one), then one line saying what was copied."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from vpsagent.render import Output

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from vpsagent.remote.transfer import Plan
    from vpsagent.services.copy import CopyResult


class CopyProgress:
    """One bar for the whole copy (bytes of every file), labelled with the file in flight."""

    def __init__(self, out: Output) -> None:
        self.enabled = not out.json_mode and not out.err.plain  # plain: not a terminal, NO_COLOR, TERM=dumb
        self.out = out
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._finished = 0  # bytes of the files already done
        self._current: tuple[str, int] = ("", 0)  # file in flight, its bytes done

    def __enter__(self) -> CopyProgress:
        return self

    def plan(self, plan: Plan) -> None:
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=self.out.err.rich(),
                                  transient=True)
        self._task = self._progress.add_task("", total=plan.total_bytes or 1)
        self._progress.start()

    def step(self, name: str, done: int, size: int) -> None:
        if self._progress is None or self._task is None:
            return
        if name != self._current[0]:
            self._finished += self._current[1]
        self._current = (name, done)
        label = name.rsplit("/", 1)[-1]
        self._progress.update(self._task, completed=self._finished + done, description=label)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()


def render_copy(out: Output, result: CopyResult) -> int:
    arrow = f"{result.source} -> {result.destination}"
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    return out.emit(result, lambda c: c.print(f"copied {arrow} ({files}, {result.bytes} bytes)", markup=False))
