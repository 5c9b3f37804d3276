"""What round one altered and must not: short git SHAs, hashes and card-like digits inside file names, key
*names* such as `ClearTextPassword`, long digit groups of account or reference numbers, Unix times."""

from __future__ import annotations

import pytest

from redact_cases import assert_kept

KEPT = [
    ("reverted 27d359c because it broke CI", "27d359c"),
    ("git cherry-pick 3f9a8b7c6d5e", "3f9a8b7c6d5e"),
    ("open report_4111111111111111.pdf from the share", "report_4111111111111111.pdf"),
    ("attached IMG_4532015112830366.jpg", "IMG_4532015112830366.jpg"),
    ("the build emitted app.3f9a8b7c6d5e4f3a2b1c.js", "app.3f9a8b7c6d5e4f3a2b1c.js"),
    ("cache_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c.json is stale", "cache_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c.json"),
    ("Set-ADUser -Identity jdoe -ClearTextPassword $false", "ClearTextPassword"),
    ("in the GPO, PasswordNeverExpires is greyed out", "PasswordNeverExpires"),
    ("the ResetPasswordToken column is nullable", "ResetPasswordToken"),
    ("mandate 4829 1039 4712 0009 1188 signed", "4829 1039 4712 0009 1188"),
    ("epoch 1712345678 in UTC?", "1712345678"),
]


@pytest.mark.parametrize(("text", "value"), KEPT)
def test_look_alike_is_kept(text: str, value: str) -> None:
    assert_kept(text, value)
