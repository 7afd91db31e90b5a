"""How the CLI shows a job made of phases (the initial sync): one bar per phase under the job's own bar, one
line per phase in the outcome."""

from __future__ import annotations

from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from crmagento.admin_api import Job, JobPhase


def phase_text(phase: JobPhase) -> str:
    total = "?" if phase.total is None else str(phase.total)
    failed = f", {phase.failed} failed" if phase.failed else ""
    return f"{phase.status} {phase.done + phase.failed}/{total}{failed}"


def phases_line(job: Job) -> str:
    """The running phase in a progress line, e.g. `products running 3/12`; empty for other jobs."""
    current = next((p for p in job.phases if p.name == job.phase), None)
    return f" {current.name} {phase_text(current)}" if current is not None else ""


def phases_table(job: Job) -> Table:
    table = Table(title=f"Phases of {job.id}", title_justify="left")
    for name in ("phase", "status", "settled", "failed", "runs"):
        table.add_column(name)
    for phase in job.phases:
        total = "?" if phase.total is None else str(phase.total)
        table.add_row(
            phase.name, phase.status, f"{phase.done + phase.failed}/{total}", str(phase.failed), str(phase.runs)
        )
    return table


class PhaseBars:
    """A bar per phase in a rich Progress, added the first time the job shows its phases."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}

    def update(self, job: Job) -> None:
        for phase in job.phases:
            if phase.name not in self._tasks:
                self._tasks[phase.name] = self._bar.add_task(f"  {phase.name}", total=None, failed="")
            settled = phase.done + phase.failed
            over = phase.status in ("done", "skipped")
            self._bar.update(
                self._tasks[phase.name],
                # Escaped: rich would take `[done]` for a style tag and drop it.
                description=escape(f"  {phase.name} [{phase.status}]"),
                completed=settled,
                total=phase.total if phase.total is not None else (settled if over else None),
                failed=f"{phase.failed} failed" if phase.failed else "",
            )
