"""Reference solutions that the trusted judge compares student outputs with."""
