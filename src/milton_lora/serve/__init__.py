"""Serving: the embedded OpenAI-compatible server, the vLLM backend, background start/stop and hot swap."""
