"""Scoring: metrics with named conventions, parameter/MAC/latency profiling, the evaluation runner and
its API (``evaluate_model``, ``load_model``)."""
