"""IPv6 addresses written in full, compressed, link-local with a zone, and IPv4-mapped (kept whole); C++ scopes,
MAC addresses and clock times stay."""

from __future__ import annotations

import pytest

from redact_cases import ENGINE, assert_kept, assert_redacted

POSITIVES = [
    (
        "sshd: Accepted key for git from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 port 22",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    ),
    ("allow 2a02:8071:b84:7e00:1c3f:9ad2:4e10:77b1 in the firewall", "2a02:8071:b84:7e00:1c3f:9ad2:4e10:77b1"),
    ("remote_addr=::ffff:192.168.1.1 status=200", "::ffff:192.168.1.1"),
    ("the NAS answers on fe80::1ff:fe23:4567:890a too", "fe80::1ff:fe23:4567:890a"),
    ("Meine IPv6 ist 2600:1700:abcd:12::3f", "2600:1700:abcd:12::3f"),
]
KEPT = [
    "std::vector<int>::iterator it = v.begin();",
    "MAC 3c:22:fb:a1:09:7e on eth0",
    "the call ran from 10:30:00 to 11:45:00",
    "use Foo::Bar::baz() here",
]


@pytest.mark.parametrize(("text", "value"), POSITIVES)
def test_ipv6_address_is_redacted_whole(text: str, value: str) -> None:
    assert_redacted(text, value, "IP_ADDRESS")


def test_ipv4_mapped_address_is_one_finding() -> None:
    assert ENGINE.redact("from ::ffff:10.20.30.40 port 22").text == "from [IP_ADDRESS] port 22"


@pytest.mark.parametrize("text", KEPT)
def test_colon_groups_that_are_no_address_are_kept(text: str) -> None:
    assert_kept(text)
