"""Benchmarks of the storage emulator (not part of the test suite): run ``python -m benchmarks [--quick]``."""
