"""Benchmarks: what a pod and a cluster pay for the sidecar, the webhook and the operator, each figure
measured in one run on one machine next to AWS's own `aws_signing_helper` where it has a peer.

`make bench` (or `python -m bench [--quick]`) prints one table and writes it to bench/RESULTS.md.
Nothing here asserts a timing; tests/integration/test_bench.py only checks that the quick mode runs.
"""
