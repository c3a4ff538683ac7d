"""Benchmarks of saescope's claims: SAE dataset diffing against LLM-only diffing, and SAE retrieval against dense.

``python -m evals.run`` builds the benchmark (:mod:`evals.benchmark`), runs the methods (:mod:`evals.methods`),
scores them (:mod:`evals.metrics`) into the records of :mod:`evals.records`, and writes a report
(:mod:`evals.report`); ``python -m evals.audit_agent`` lets a chat model investigate two datasets through ``saescope serve``.
"""
