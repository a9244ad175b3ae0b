"""Rich progress for a run: task, step, reward and the last curve scores."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def console() -> Console:
    """The console every command prints its tables and notes to (stdout)."""
    return Console()


class RunProgress:
    def __init__(self, console: Console | None, n_tasks: int, steps: int):
        self.console = console or Console(stderr=True)
        self.steps = steps
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                            console=self.console, transient=False)
        self.job = None

    def __enter__(self) -> "RunProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def note(self, text: str) -> None:
        self.bar.console.log(text)

    def start_task(self, name: str, index: int, done: int) -> None:
        self.job = self.bar.add_task(f"task {index + 1}: {name}", total=self.steps, completed=done, info="")

    def on_step(self, task: str, step: int, total: int, reward, scores) -> None:
        info = f"reward {reward:.3f}" if reward is not None else ""
        if scores:
            info += "  dev " + " ".join(f"{k} {100 * v:.0f}" for k, v in scores.items())
        self.bar.update(self.job, completed=step, info=info)
