"""Reliability and security tests: faults, kills, hostile input, secrecy and the rate budget.

The package marker keeps these module names (``reliability.test_*``) apart from the other test
directories, and lets the soak driver and the tests share one harness.
"""
