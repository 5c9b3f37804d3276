"""Evaluation: held-out metrics, sanity prompts, task benchmarks with a code sandbox, and auto-promotion."""
