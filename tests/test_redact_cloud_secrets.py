"""Cloud secrets stated in prose: an AWS secret access key after `and secret`, `my secret key is`; keys of
providers without a prefix after their name (Azure storage, Datadog, Twilio); and the sentences with those
words that hold no secret."""

from __future__ import annotations

import pytest

from redact_cases import assert_kept, assert_redacted

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz8WpLq1aB"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

POSITIVES = [
    (f"key id AKIAZ3MHQ7LRT4VXKP2B and secret {AWS_SECRET}", AWS_SECRET),
    (f"my secret key is {AWS_SECRET} — I'll rotate it", AWS_SECRET),
    (f"the storage account key is {AZURE_KEY}.", AZURE_KEY),
    ("datadog api key 8f3c2a9d1e7b4c6a0f5d9e2b7a1c4d8e, staging only", "8f3c2a9d1e7b4c6a0f5d9e2b7a1c4d8e"),
    ("our Twilio auth token is c41d9e8a7b6f5e4d3c2b1a0f9e8d7c6b", "c41d9e8a7b6f5e4d3c2b1a0f9e8d7c6b"),
    ("the client secret was now Qm8vT2xkZXJfU2VjcmV0X3Rlc3Q0Mg", "Qm8vT2xkZXJfU2VjcmV0X3Rlc3Q0Mg"),
]
NEGATIVES = [
    "the secret is to let the dough rest overnight",
    "the key is to be consistent",
    "the token expires in 3600 seconds",
    "the public key AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 is fine to share",
    "my secret key is somewhere in 1Password",
]


@pytest.mark.parametrize(("text", "value"), POSITIVES)
def test_cloud_secret_in_prose_is_redacted(text: str, value: str) -> None:
    assert_redacted(text, value, "API_KEY")


@pytest.mark.parametrize("text", NEGATIVES)
def test_sentence_with_secret_words_is_kept(text: str) -> None:
    assert_kept(text)
