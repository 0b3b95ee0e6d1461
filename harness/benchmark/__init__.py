"""Benchmarks over records: comparisons of methods on tasks, seeds and ablations
(:mod:`harness.benchmark.compare`) and tuning on some tasks, scoring on others
(:mod:`harness.benchmark.transfer`). They sit above the sweep (:mod:`harness.study.driver`)
and the algorithms, and below reporting and the command line.
"""
