"""Submissions that try to earn points they do not deserve; each must be contained."""
