"""The runtime side of studies: retries, seeding, resume guards and worker processes.

:mod:`harness.study` drives a study; the pieces here keep a run's results safe when
processes die, disks fill up or a study is resumed under different conditions.
"""
