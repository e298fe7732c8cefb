"""Student helper package of the Sizing & TTA workbook: data, training helpers, plots and public checks.

Importing it first (before fastai) keeps one library warning out of every notebook: fastai 2.8's
`fastai.layers` decorates a function with `torch.jit.script` when it is imported, and the pinned torch (2.14)
warns that `torch.jit.script` is deprecated, with the path of the installed torch. The student can do nothing
about it (the call is inside fastai), so it is filtered by its exact message, for that module only.
"""
import warnings

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")
