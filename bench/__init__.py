"""Benchmarks of the registry and the gateway against the real stack, in one run.

`python -m bench` starts an embedded PostgreSQL and NATS, the registry in-process
and the gateway in a thread, measures, and prints one JSON document to stdout
(logs go to stderr). Every figure is paired with a baseline taken in the same
run on the same database, and reported with the ratio between the two.
"""
