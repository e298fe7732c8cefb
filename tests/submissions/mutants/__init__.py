"""Realistic wrong implementations, one module per concept; each lists the checks it must fail."""
