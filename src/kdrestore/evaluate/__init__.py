"""Scoring: metrics with named conventions, parameter/MAC/latency profiling, the evaluation runner and
its API (``evaluate_model``, ``load_model``), and the calibration of the metrics against published
numbers. The trainer uses this floor; the benches, the ship bench and the report live above the engine
in :mod:`kdrestore.experiments`."""
