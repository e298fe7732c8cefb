"""Grade-on-submit delay: seconds from a submission's arrival in the exchange to its released feedback,
for a burst of submissions (default 10, one per student) handed in while the service is running.

    .venv/bin/python bench/grade_on_submit.py              # 10 submissions, the service at --jobs 2
    .venv/bin/python bench/grade_on_submit.py -n 10 --jobs 1

A one-notebook course (01_imagenette) is released to a private exchange; the service
(`python -m autograder.on_submit`, polling every second) is started and has made its first look; then
the students hand in with nbgrader's own `submit`, as fast as it goes, half with the reference answers
and half blank. The delay of a submission is the one the service records when its feedback is out
(`<course>/.on_submit/done/`): now minus nbgrader's timestamp of the submission. The feedback files are
also counted in the exchange. Training cells run with the reduced budget (WORKBOOK_FAST=1), as always
when grading. The load average before the run is checked: above half the cores, other work was
running and the figures are marked DISTURBED.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402  (bench/, the script's own folder)

from autograder.config import ASSIGNMENT, COURSE_ID, REPO_ROOT  # noqa: E402
from autograder.gradebook import make_api  # noqa: E402
from autograder.golden.build import write_submission  # noqa: E402

NOTEBOOK = "01_imagenette"


def nbgrader(*args: str, cwd: Path, exchange: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course", COURSE_ID,
                           f"--Exchange.root={exchange}"], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: nbgrader {' '.join(args)} failed: {(done.stderr or done.stdout)[-800:]}")


def released_course(root: Path) -> tuple[Path, Path]:
    """A one-notebook course generated and released to a private exchange."""
    course, exchange = root / "course", root / "exchange"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    exchange.mkdir()
    source = REPO_ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    shutil.copy2(source, course / "source" / ASSIGNMENT / source.name)
    api = make_api(course, source_root=course / "source", release_root=course / "release")
    if not api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]:
        sys.exit("error: nbgrader generate_assignment failed on the one-notebook course")
    nbgrader("release_assignment", ASSIGNMENT, f"--CourseDirectory.root={course}",
             "--CourseDirectory.release_directory=release", cwd=course, exchange=exchange)
    return course, exchange


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10, help="submissions, one per student (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="the service's parallel kernels (default 2)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    args = parser.parse_args()
    if args.n < 1 or args.jobs < 1:
        sys.exit(f"error: -n and --jobs must be at least 1, got -n {args.n} --jobs {args.jobs}")
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="bench-on-submit-", dir=REPO_ROOT / ".cache"))
    service = None
    try:
        course, exchange = released_course(root)
        students = [f"s{i:02d}" for i in range(1, args.n + 1)]
        for i, student in enumerate(students):
            write_submission(root / "students" / student / ASSIGNMENT, reference=i % 2 == 0, notebooks=[NOTEBOOK])
        log = open(root / "service.log", "w")
        service = subprocess.Popen(
            [sys.executable, "-m", "autograder.on_submit", "--course", str(course), "--exchange", str(exchange),
             "--poll", "1", "--jobs", str(args.jobs)],
            env={**os.environ, "WORKBOOK_FAST": "1"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        while not (course / ".on_submit" / "done").is_dir():  # the service is up and has looked once
            if service.poll() is not None:
                sys.exit(f"error: the service stopped: {(root / 'service.log').read_text()[-800:]}")
            time.sleep(0.2)
        start = time.monotonic()
        for student in students:
            nbgrader("submit", ASSIGNMENT, "--student", student, cwd=root / "students" / student, exchange=exchange)
        handed_in = time.monotonic() - start
        done_dir = course / ".on_submit" / "done"
        while len(list(done_dir.glob("*.json"))) < args.n:
            if service.poll() is not None:
                sys.exit(f"error: the service stopped: {(root / 'service.log').read_text()[-1500:]}")
            if time.monotonic() - start > args.timeout:
                sys.exit(f"error: {len(list(done_dir.glob('*.json')))} of {args.n} graded after {args.timeout:.0f} s")
            time.sleep(0.5)
        wall = time.monotonic() - start
        done = sorted((json.loads(p.read_text()) for p in done_dir.glob("*.json")), key=lambda d: d["delay_s"])
        feedback = list((exchange / COURSE_ID / "feedback").glob("*.html"))
    finally:
        if service is not None and service.poll() is None:
            os.killpg(service.pid, 15)
            service.wait(30)
    delays = [d["delay_s"] for d in done]
    print(f"{args.n} submissions handed in within {handed_in:.1f} s; service at --jobs {args.jobs}, "
          f"polling every 1 s, on {os.cpu_count()} cores")
    for d in done:
        print(f"  {d['student']}: {d['total']:g}/{d['max_total']:g} ({d['status']}), "
              f"feedback released {d['delay_s']:.1f} s after submitting")
    print(f"delay: min {min(delays):.1f} s, median {statistics.median(delays):.1f} s, max {max(delays):.1f} s; "
          f"all {args.n} released {wall:.1f} s after the first submit began; "
          f"{len(feedback)} feedback files in the exchange")
    if len(feedback) != args.n or any(d["status"] != "graded" for d in done):
        print("error: not every submission was graded and its feedback released", file=sys.stderr)
        return 1
    if note := disturbed_note(load_before):
        print(note)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
