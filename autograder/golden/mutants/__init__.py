"""Realistic wrong implementations, one module per concept.

Each module lists `MUTANTS`: the exercise function a mutant replaces and the exact set of checks it
must fail (tests/test_mutants.py judges every one against every check of its function).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str  # the exercise function it replaces
    fn: object
    breaks: frozenset
