"""Instructor-only grading package: reference solutions, trusted checks, sandbox and CLI.

Nothing in here may be imported by the student package `workbook` or reach `release/`.
"""
