"""The client's address behind the reverse proxy: believed only from trusted proxies, right-most hop first."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from config.proxy import client_address
from tests.test_api_conventions import GUESS, TOKEN, assert_rate_limited, ip_with_time_left

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),  # nginx appended the client
        ("127.0.0.1", "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # the client wrote a hop itself: not believed
        ("127.0.0.1", "203.0.113.7, 127.0.0.1", "203.0.113.7"),  # two of our proxies in a row
        ("127.0.0.1", "", "127.0.0.1"),  # no header: the proxy itself (a health check)
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),  # a client on the proxy's machine
        ("198.51.100.4", "203.0.113.7", "198.51.100.4"),  # not from a proxy: the header is the caller's lie
        ("127.0.0.1", "203.0.113.7, not-an-ip", "127.0.0.1"),  # garbage after our hop: believe nothing
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address(remote: str, forwarded: str, expected: str) -> None:
    assert client_address(remote, forwarded, LOOPBACK) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_metrics_behind_the_proxy_see_the_public_client(client) -> None:
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="8.8.8.8").status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 200


@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_metrics_cannot_be_opened_by_a_forged_header_from_outside(client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_sign_in_limit_counts_the_forwarded_client_not_the_proxy() -> None:
    limited_ip = ip_with_time_left("login")
    other_ip = ip_with_time_left("login", besides=limited_ip)
    via_proxy = APIClient(REMOTE_ADDR="127.0.0.1")
    for _ in range(10):
        via_proxy.post(TOKEN, GUESS, format="json", HTTP_X_FORWARDED_FOR=limited_ip)
    assert_rate_limited(via_proxy.post(TOKEN, GUESS, format="json", HTTP_X_FORWARDED_FOR=limited_ip))
    other = via_proxy.post(TOKEN, GUESS, format="json", HTTP_X_FORWARDED_FOR=other_ip)
    assert other.status_code == 400  # another client behind the same proxy keeps its own count


def test_a_bad_trusted_proxies_setting_is_refused_at_start() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "TRUSTED_PROXIES": "127.0.0.1,not-a-network",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr
