"""What a student must not see in a notebook's or a feedback page's outputs, shared by the tests of
tests/test_student_view.py and tests/test_browser_student_view.py."""
import re

# A library warning as Python prints it ("...py:1491: FutureWarning: ..." or "UserWarning: ...").
WARNING = re.compile(r"\b\w*Warning: ")
# An absolute path of the machine that ran the notebook: a slash-rooted path of two or more parts that
# starts a word (so "160/320/full" or a URL's path do not count).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.-]+/)+[\w.-]*")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^-{20,}\n\w+(Error|Exception)", re.M)


def noise(text: str) -> list[str]:
    """The warnings, absolute paths and tracebacks in `text` (output of one cell), as short quotes."""
    found = []
    for kind, pattern in (("warning", WARNING), ("absolute path", ABSOLUTE_PATH), ("traceback", TRACEBACK)):
        for match in pattern.finditer(text):
            start = max(match.start() - 40, 0)
            found.append(f"{kind}: …{text[start:match.end() + 40]!r}…")
    return found
