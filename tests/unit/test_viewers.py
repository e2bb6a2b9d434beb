"""signer/viewers.py: the unit a viewer is counted in, the same from a parsed request (which
parses client_ip once) as from the network's text."""

from __future__ import annotations

import pytest

from signer.issuing import parse_playback_request
from signer.viewers import address_bucket


@pytest.mark.parametrize(
    ("client_ip", "unit"),
    [
        ("203.0.113.9", "203.0.113.9/32"),
        ("203.0.113.8/29", "203.0.113.8/32"),
        ("::ffff:203.0.113.9", "203.0.113.9/32"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::/48", "2001:db8::/64"),
    ],
)
def test_unit_from_the_one_parse(client_ip: str, unit: str) -> None:
    req = parse_playback_request(
        {"video_id": "v", "client_ip": client_ip}, default_ttl=60, max_ttl=600, entry_file="m"
    )
    assert req.client_network is not None
    assert req.client_unit == address_bucket(req.client_network) == unit


def test_no_address_no_unit() -> None:
    req = parse_playback_request({"video_id": "v"}, default_ttl=60, max_ttl=600, entry_file="m")
    assert req.client_network is None
    assert req.client_unit is None
