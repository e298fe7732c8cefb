"""Similarity report: which students' solution code is suspiciously alike, pair by pair.

Only the code students wrote is compared: the solution cells of their notebooks (nbgrader marks them),
without the cells left as released. Each cell is normalised (parsed and printed back by `ast`, so
comments, blank lines and formatting disappear), and the release's own stubs (signatures, docstrings,
the comment lines the workbook gives) are handed to copydetect as boilerplate: code the class was given
is never evidence. copydetect (Winnowing, as MOSS does) tokenizes the code, replaces every name by one
letter, fingerprints it and counts the tokens each pair shares, so renamed variables and changed
comments do not hide a copy, and reordered lines lose only the fingerprints that span the moved joints.

`python -m autograder.similarity SUBMISSIONS [--out report.html]` (or `make similarity SUBMISSIONS=...`)
writes one HTML page: the pairs ranked by similarity, then the top pairs' code side by side with the
shared parts highlighted.
"""
import argparse
import ast
import html
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from copydetect import CopyDetector

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import GradingError
from autograder.intake import IntakeError, inspect_submission

__all__ = ["Pair", "Report", "solution_cells", "normalise", "compare_class", "write_html", "main"]

RELEASE = REPO_ROOT / "release" / ASSIGNMENT
# Fingerprints are k-grams of the filtered token text (one character per name): 20 characters is about a
# line of code. Shorter shared runs are too common in idiomatic torch code to mean anything.
NOISE_CHARS = 20
GUARANTEE_CHARS = 24


@dataclass(frozen=True)
class Pair:
    """Two students and how much of each one's code the other shares (0..1)."""
    first: str
    second: str
    share_first: float
    share_second: float
    tokens: int
    first_html: str = ""
    second_html: str = ""

    @property
    def score(self) -> float:
        """The ranking score: the mean of the two shares (a one-sided copy still ranks high)."""
        return (self.share_first + self.share_second) / 2


@dataclass(frozen=True)
class Report:
    pairs: list[Pair]           # ranked, most similar first
    students: list[str]         # compared
    skipped: dict[str, str]     # student -> why not compared
    seconds: float


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_cells(path: Path) -> dict[str, str]:
    """{grade id: source} of the code solution cells of a notebook."""
    nb = nbformat.read(path, as_version=4)
    return {_grade_id(c): c.source for c in nb.cells if c.cell_type == "code"
            and c.get("metadata", {}).get("nbgrader", {}).get("solution") and _grade_id(c)}


def normalise(code: str) -> str:
    """The code as `ast` prints it back (no comments, one formatting); IPython lines (%, !) dropped.

    Code that does not parse is kept as written: a copy of broken code is still a copy.
    """
    kept = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.unparse(ast.parse(kept))
    except (SyntaxError, ValueError):
        return kept


def _stubs(release: Path) -> dict[tuple[str, str], str]:
    return {(nb.stem, gid): src for nb in sorted(release.glob("*.ipynb")) for gid, src in solution_cells(nb).items()}


def _student_code(folder: Path, notebooks: set[str], stubs: dict) -> str:
    """One student's answered solution cells, normalised, headed by where each comes from."""
    parts = []
    for name in sorted(notebooks):
        stem = Path(name).stem
        for gid, src in solution_cells(folder / name).items():
            if (stem, gid) in stubs and normalise(src) == normalise(stubs[(stem, gid)]):
                continue            # left as released
            parts.append(f"# {stem} / {gid}\n{normalise(src)}\n")
    return "\n".join(parts)


def compare_class(submissions: Path, release: Path = RELEASE, work: Path | None = None) -> Report:
    """Compare every pair of students under `submissions` (one folder per student, as `make grade` reads).

    Args:
        submissions: the class folder.
        release: the release notebooks whose solution stubs are boilerplate.
        work: where to write the normalised code (a temporary folder by default).
    """
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder; expected one folder per student inside it")
    start = time.perf_counter()
    stubs = _stubs(release)
    expected = {p.name for p in RELEASE.glob("*.ipynb")}  # the assignment's notebooks, whatever the boilerplate
    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        root = Path(work or tmp)
        code_dir, stub_dir = root / "students", root / "boilerplate"
        stub_dir.mkdir(parents=True, exist_ok=True)
        (stub_dir / "stubs.py").write_text("\n\n".join(normalise(s) for s in stubs.values()))
        students, skipped = [], {}
        for student_dir in sorted(p for p in submissions.iterdir() if not p.name.startswith(".")):
            try:
                folder, notebooks, _ = inspect_submission(student_dir, expected)
            except IntakeError as e:
                skipped[student_dir.name] = str(e)
                continue
            code = _student_code(folder, notebooks, stubs)
            if not code.strip():
                skipped[student_dir.name] = "no solution cell answered"
                continue
            (code_dir / student_dir.name).mkdir(parents=True)
            (code_dir / student_dir.name / "solutions.py").write_text(code)
            students.append(student_dir.name)
        pairs = _pairs(code_dir, students) if len(students) > 1 else []
    return Report(pairs, students, skipped, time.perf_counter() - start)


def _pairs(code_dir: Path, students: list[str]) -> list[Pair]:
    detector = CopyDetector(test_dirs=[str(code_dir)], extensions=["py"], boilerplate_dirs=[str(code_dir.parent / "boilerplate")],
                            noise_t=NOISE_CHARS, guarantee_t=GUARANTEE_CHARS, display_t=0.0,
                            autoopen=False, silent=True, force_language="python")
    detector.run()
    found = {}
    for share_a, share_b, file_a, file_b, html_a, html_b, tokens in detector.get_copied_code_list():
        a, b = Path(file_a).parent.name, Path(file_b).parent.name
        found[frozenset((a, b))] = Pair(a, b, float(share_a), float(share_b), int(tokens), html_a, html_b)
    # Pairs that share nothing are ranked too (at 0), so no student is silently left out of the table.
    for i, a in enumerate(students):
        for b in students[i + 1:]:
            found.setdefault(frozenset((a, b)), Pair(a, b, 0.0, 0.0, 0))
    return sorted(found.values(), key=lambda p: (-p.score, -p.tokens, p.first, p.second))


STYLE = """body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;
padding:2px 8px;text-align:left} .side{display:flex;gap:1em} .side pre{flex:1;overflow:auto;background:#f7f7f7;
padding:.5em;font-size:12px} .highlight-red{background:#fbb} .highlight-green{background:#bfb}"""


def write_html(report: Report, out: Path, show: int = 20) -> Path:
    """Write the ranking table and the top `show` pairs side by side."""
    esc = html.escape
    def link(rank: int, pair: Pair) -> str:
        return f"<a href='#pair{rank}'>code</a>" if rank <= show and pair.tokens else ""

    rows = "".join(
        f"<tr><td>{rank}</td><td>{esc(p.first)}</td><td>{esc(p.second)}</td><td>{p.score:.1%}</td>"
        f"<td>{p.share_first:.1%}</td><td>{p.share_second:.1%}</td><td>{p.tokens}</td><td>{link(rank, p)}</td></tr>"
        for rank, p in enumerate(report.pairs, 1))
    details = "".join(
        f"<h3 id='pair{rank}'>{rank}. {esc(p.first)} ↔ {esc(p.second)}: {p.score:.1%}</h3><div class='side'>"
        f"<pre>{p.first_html}</pre><pre>{p.second_html}</pre></div>"
        for rank, p in enumerate(report.pairs[:show], 1) if p.tokens)
    skipped = "".join(f"<li>{esc(s)}: {esc(why)}</li>" for s, why in sorted(report.skipped.items()))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity of {ASSIGNMENT}</title>"
            f"<style>{STYLE}</style></head><body><h1>Similarity of the solution code, {ASSIGNMENT}</h1>"
            f"<p>{len(report.students)} students, {len(report.pairs)} pairs, compared in {report.seconds:.1f} s. "
            "Code is normalised, names are ignored, and the released stubs do not count. A high score says "
            "where to look, not that anyone copied: read the code.</p>"
            f"{f'<p>Not compared:</p><ul>{skipped}</ul>' if skipped else ''}"
            "<table><tr><th>rank</th><th>student</th><th>student</th><th>score (mean share)</th>"
            f"<th>share of first</th><th>share of second</th><th>shared tokens</th><th></th></tr>{rows}</table>"
            f"<h2>The most similar pairs, side by side</h2>{details}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def format_ranking(report: Report, limit: int | None = None) -> str:
    """The ranking as a Markdown table."""
    lines = ["| rank | student | student | score | share of first | share of second | shared tokens |",
             "|---|---|---|---|---|---|---|"]
    for rank, p in enumerate(report.pairs[:limit], 1):
        lines.append(f"| {rank} | {p.first} | {p.second} | {p.score:.1%} | {p.share_first:.1%} | "
                     f"{p.share_second:.1%} | {p.tokens} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.similarity", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="one folder per student, as for make grade")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".grading" / "similarity.html")
    parser.add_argument("--show", type=int, default=20, help="pairs shown side by side (default 20)")
    parser.add_argument("--top", type=int, default=10, help="pairs printed here (default 10)")
    args = parser.parse_args(argv)
    try:
        report = compare_class(args.submissions)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for student, why in sorted(report.skipped.items()):
        print(f"not compared: {student}: {why}", file=sys.stderr)
    if len(report.students) < 2:
        print(f"error: fewer than two students with answered solution cells in {args.submissions}", file=sys.stderr)
        return 2
    print(format_ranking(report, args.top))
    print(f"\n{len(report.pairs)} pairs of {len(report.students)} students in {report.seconds:.1f} s; "
          f"report: {write_html(report, args.out, args.show)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
