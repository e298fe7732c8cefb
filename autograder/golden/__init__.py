"""The golden submissions: known-good, known-wrong and hostile work the grader must score as expected.

`build` writes whole submissions from the release notebooks (`python -m autograder.golden.build DEST`
writes the golden class of `make grade-golden` and `autograder.gpu_check`); `mutants/` holds realistic
wrong implementations, one module per concept, each with the checks it must fail; `attacks/` holds
submissions that try to earn points they do not deserve; `copies` builds the similarity report's class
with planted, disguised copies. The tests (tests/test_mutants.py, tests/test_attacks.py, ...) and the
benches use them.
"""
