"""Which of the chapter's questionnaire items the workbook covers, each with a model answer."""
import re

import nbformat

from autograder.config import ASSIGNMENT, REPO_ROOT

SOURCE = REPO_ROOT / "source" / ASSIGNMENT
TAG = re.compile(r"^(questionnaire:Q(\d+)|further-research:FR(\d+))$")
# The chapter's whole questionnaire (14 questions) and its 4 Further Research items.
REQUIRED = {f"Q{n}" for n in range(1, 15)} | {f"FR{n}" for n in range(1, 5)}


def tagged_items():
    """{item: (notebook, index of the cell stating it, cells of that notebook)} from the cell tags."""
    items = {}
    for path in sorted(SOURCE.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            for tag in cell.get("metadata", {}).get("tags", []):
                match = TAG.match(tag)
                if match:
                    item = f"Q{match.group(2)}" if match.group(2) else f"FR{match.group(3)}"
                    assert item not in items, f"{item} is tagged twice"
                    items[item] = (path.stem, i, cells)
    return items


def test_required_questions_are_covered():
    items = tagged_items()
    print("questionnaire items covered:", ", ".join(sorted(items, key=lambda s: (s[0], int(s.lstrip("QFR"))))))
    assert REQUIRED <= set(items), f"missing: {sorted(REQUIRED - set(items))}"


def test_each_question_is_followed_by_a_graded_answer_with_a_model_answer():
    for item, (notebook, index, cells) in tagged_items().items():
        if not item.startswith("Q"):
            continue
        following = cells[index + 1:]
        answers = [c for c in following if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
        assert answers, f"{item} in {notebook} has no answer cell after it"
        assert len(answers[0].source.strip()) > 80, f"{item} in {notebook}: the model answer is missing or too short"
