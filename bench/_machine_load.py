"""Whether other work shared the CPUs during a bench run, judged from the load average before it starts
(afterwards the load average also counts the bench's own jobs)."""
import os


def disturbed_note(load_before: float) -> str | None:
    """A line to print when the 1-minute load average before the run exceeded half the cores, else None."""
    cores = os.cpu_count() or 1
    if load_before <= cores / 2:
        return None
    return (f"DISTURBED: load average {load_before:.1f} before the run, on {cores} cores (other work was "
            f"running); rerun on a quiet machine for a clean figure")
