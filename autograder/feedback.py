"""HTML feedback that reads well without a network: MathJax inlined, figures with alt text.

nbgrader's feedback template loads MathJax 2 from a CDN, so offline every formula shows as raw LaTeX.
`feedback_config` puts `templates/` before nbgrader's own template folder, so that the
`feedback` template (nbgrader's, which its API always asks for) finds our `feedback/mathjax.html.j2`
before nbconvert's: that macro inlines MathJax 3 in the page instead (the
`tex-svg` component from the pinned `django-static-mathjax` package: one self-contained script, about
2 MB, that draws formulas as SVG and loads nothing else).
"""
from functools import lru_cache
from pathlib import Path

import mathjax
import nbgrader
from markupsafe import Markup
from traitlets.config import Config

__all__ = ["MATHJAX_ES5", "TEMPLATES", "inline_mathjax", "feedback_config"]

MATHJAX_ES5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
TEMPLATES = Path(__file__).parent / "templates"
NBGRADER_TEMPLATES = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


@lru_cache(maxsize=4)
def inline_mathjax(component: str) -> Markup:
    """The text of one MathJax 3 component (e.g. "tex-svg"), safe to put inside a <script> element."""
    text = (MATHJAX_ES5 / f"{component}.js").read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise ValueError(f"MathJax's {component}.js contains '</script' and cannot be inlined in a page")
    return Markup(text)


def feedback_config() -> Config:
    """Settings of nbgrader's GenerateFeedback (its HTMLExporter) for offline feedback pages."""
    c = Config()
    # nbgrader adds its own template folder only when this is not configured; keep it, after ours.
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
    c.HTMLExporter.filters = {"inline_mathjax": inline_mathjax}
    return c
