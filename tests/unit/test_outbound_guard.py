"""The SSRF guard: refused ranges, the allowlist, schemes, redirects, size and time caps.

Host names are answered by a stub resolver; the only address ever dialled is
127.0.0.1, where a real aiohttp server runs when a test needs a response.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from conveyor.domain.errors import InvalidInput
from conveyor.net.guard import GuardedResolver, OutboundClient, OutboundTimeout
from conveyor.net.policy import OutboundPolicy, OutboundRefused, refusal_reason, split_entries
from conveyor.settings import load_settings
from tests.loopback import serving

pytestmark = pytest.mark.anyio

BIG = 200_000


class StubResolver(AbstractResolver):
    """Answers host names from a table, and counts the questions."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records the paths it was asked for."""

    port: int
    paths: list[str] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    seen: list[str] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/secret")
        if request.path == "/big":
            return web.Response(body=b"x" * BIG)
        if request.path == "/exact":
            return web.Response(body=b"y" * 1000)
        if request.path == "/slow":
            await release.wait()
        return web.Response(text="hello")

    async with serving(handle) as port:
        try:
            yield Receiver(port, seen)
        finally:
            release.set()


REFUSED = [
    ("127.0.0.1", "loopback address"),
    ("127.8.9.10", "loopback address"),
    ("::1", "loopback address"),
    ("10.0.0.5", "private address"),
    ("172.16.3.4", "private address"),
    ("192.168.1.1", "private address"),
    ("fd12:3456::1", "private address"),
    ("169.254.169.254", "cloud metadata address"),
    ("fd00:ec2::254", "cloud metadata address"),
    ("169.254.10.20", "link-local address"),
    ("fe80::1", "link-local address"),
    ("fec0::1", "site-local address"),
    ("224.0.0.1", "multicast address"),
    ("ff02::1", "multicast address"),
    ("0.0.0.0", "unspecified address"),  # noqa: S104 - an address refused, not bound
    ("::", "unspecified address"),
    ("240.0.0.1", "reserved address"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.254", "shared address space (CGNAT)"),
    ("192.0.2.10", "non-public address"),
    ("198.18.0.1", "non-public address"),
    ("::ffff:10.0.0.5", "private address, embedded in IPv6"),
    ("::ffff:127.0.0.1", "loopback address, embedded in IPv6"),
    ("::ffff:169.254.169.254", "cloud metadata address, embedded in IPv6"),
    ("64:ff9b::a00:5", "private address, embedded in IPv6"),
    ("2002:a00:5::1", "private address, embedded in IPv6"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_each_non_public_range_is_refused_with_its_reason(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None
    OutboundPolicy().check("example.com", ipaddress.ip_address(address))


@pytest.mark.parametrize(("address", "reason"), REFUSED)
async def test_a_name_resolving_to_a_refused_address_is_never_dialled(
    address: str, reason: str
) -> None:
    resolver = StubResolver({"target.test": [address]})
    client = OutboundClient(resolver=resolver)
    with pytest.raises(OutboundRefused) as caught:
        await client.request("GET", "http://target.test/")
    assert caught.value.message == (
        f"refused to call target.test at {ipaddress.ip_address(address)} ({reason}); "
        "add it to http_allow (CONVEYOR_HTTP_ALLOW) to permit it"
    )
    assert resolver.asked == ["target.test"]


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5/", "http://[::ffff:10.0.0.5]:8080/x", "https://192.168.0.1"]
)
async def test_an_ip_literal_url_is_checked_before_any_connection(url: str) -> None:
    with pytest.raises(OutboundRefused, match=r"refused to call \S+ \(private address"):
        await OutboundClient().request("GET", url)


async def test_the_refusal_names_the_host_and_the_reason() -> None:
    with pytest.raises(OutboundRefused) as caught:
        await OutboundClient().request("GET", "http://10.0.0.5/admin")
    assert caught.value.message == (
        "refused to call 10.0.0.5 (private address); "
        "add it to http_allow (CONVEYOR_HTTP_ALLOW) to permit it"
    )


@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://127.1/", "http://0x7f.1/", "http://0177.0.0.1/"]
)
async def test_legacy_numeric_forms_of_loopback_are_refused(url: str) -> None:
    with pytest.raises((OutboundRefused, InvalidInput)):
        await OutboundClient().request("GET", url, time_limit=2)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/f", "file:///etc/passwd", "gopher://x.test/", "ws://a.test/"]
)
async def test_only_http_and_https_may_be_called(url: str) -> None:
    resolver = StubResolver({})
    with pytest.raises(OutboundRefused, match="only http and https URLs may be called"):
        await OutboundClient(resolver=resolver).request("GET", url)
    assert resolver.asked == []


def test_the_allowlist_lets_networks_addresses_and_host_names_through() -> None:
    policy = OutboundPolicy.from_entries(
        ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "hooks.internal", "*.corp.test"]
    )
    policy.check("anything", ipaddress.ip_address("10.200.0.1"))
    policy.check("anything", ipaddress.ip_address("::ffff:10.1.2.3"))
    policy.check("anything", ipaddress.ip_address("192.168.1.7"))
    policy.check("anything", ipaddress.ip_address("fd00::5"))
    policy.check("HOOKS.internal.", ipaddress.ip_address("172.16.0.1"))
    policy.check("api.corp.test", ipaddress.ip_address("172.16.0.1"))
    for host, address in [
        ("anything", "192.168.1.8"),
        ("corp.test", "172.16.0.1"),
        ("hooks.internal.evil.test", "172.16.0.1"),
        ("anything", "169.254.169.254"),
    ]:
        with pytest.raises(OutboundRefused):
            policy.check(host, ipaddress.ip_address(address))


async def test_an_allowlisted_network_is_reached(receiver: Receiver) -> None:
    client = OutboundClient(OutboundPolicy.from_entries(["127.0.0.0/8"]))
    response = await client.request("GET", receiver.url("/hello"))
    assert (response.status, response.text()) == (200, "hello")
    assert receiver.paths == ["/hello"]


async def test_an_allowlisted_host_name_is_reached_whatever_it_resolves_to(
    receiver: Receiver,
) -> None:
    resolver = StubResolver({"hooks.internal": ["127.0.0.1"], "other.internal": ["127.0.0.1"]})
    client = OutboundClient(OutboundPolicy.from_entries("hooks.internal"), resolver=resolver)
    response = await client.request("GET", f"http://hooks.internal:{receiver.port}/by-name")
    assert response.status == 200
    with pytest.raises(OutboundRefused, match=r"other\.internal at 127\.0\.0\.1"):
        await client.request("GET", f"http://other.internal:{receiver.port}/")
    assert receiver.paths == ["/by-name"]


async def test_only_allowed_addresses_of_a_name_are_connected_to() -> None:
    resolver = GuardedResolver(
        OutboundPolicy(), StubResolver({"mixed.test": ["10.0.0.5", "93.184.216.34"]})
    )
    found = await resolver.resolve("mixed.test", 80)
    assert [result["host"] for result in found] == ["93.184.216.34"]


async def test_a_refused_address_next_to_an_allowed_one_is_skipped(receiver: Receiver) -> None:
    resolver = StubResolver({"mixed.test": ["10.0.0.5", "127.0.0.1"]})
    client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"), resolver=resolver)
    response = await client.request("GET", f"http://mixed.test:{receiver.port}/mixed")
    assert response.status == 200
    assert receiver.paths == ["/mixed"]


async def test_every_connection_resolves_again_so_rebinding_is_caught(
    receiver: Receiver,
) -> None:
    # The name is public when first asked, then points inside: each request's own
    # lookup is the one checked, and it is the address connected to.
    resolver = StubResolver({"rebind.test": ["93.184.216.34"]})
    guarded = GuardedResolver(OutboundPolicy(), resolver)
    assert await guarded.resolve("rebind.test", 80)
    resolver.table["rebind.test"] = ["127.0.0.1"]
    client = OutboundClient(resolver=resolver)
    with pytest.raises(OutboundRefused, match="loopback"):
        await client.request("GET", f"http://rebind.test:{receiver.port}/")
    assert receiver.paths == []


async def test_a_redirect_is_returned_not_followed(receiver: Receiver) -> None:
    client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1/32"))
    response = await client.request("GET", receiver.url("/redirect"))
    assert response.status == 302
    assert response.headers["location"].endswith("/secret")
    assert receiver.paths == ["/redirect"]


async def test_the_body_is_read_up_to_the_cap(receiver: Receiver) -> None:
    client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"), max_body=1000)
    big = await client.request("GET", receiver.url("/big"))
    assert (len(big.body), big.truncated) == (1000, True)
    exact = await client.request("GET", receiver.url("/exact"))
    assert (len(exact.body), exact.truncated) == (1000, False)


async def test_a_slow_response_times_out(receiver: Receiver) -> None:
    client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"))
    with pytest.raises(OutboundTimeout, match=r"no complete response from 127\.0\.0\.1 in 0\.3 s"):
        await client.request("GET", receiver.url("/slow"), time_limit=0.3)


async def test_proxy_variables_from_the_environment_are_ignored(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"))
    assert (await client.request("GET", receiver.url("/direct"))).status == 200
    assert receiver.paths == ["/direct"]


def test_allowlist_entries_come_as_lists_json_or_separated_text() -> None:
    assert split_entries("10.0.0.0/8, hooks.internal  *.corp") == [
        "10.0.0.0/8",
        "hooks.internal",
        "*.corp",
    ]
    assert split_entries('["10.0.0.0/8", "a.test"]') == ["10.0.0.0/8", "a.test"]
    assert split_entries(["::1"]) == ["::1"]
    assert split_entries("") == []


@pytest.mark.parametrize("entry", ["not a host!", "10.0.0.0/33", "http://a.test/", "*.*.x"])
def test_a_bad_allowlist_entry_names_the_setting(entry: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        OutboundPolicy.from_entries([entry])
    assert caught.value.field == "http_allow"


def test_the_settings_read_the_allowlist_and_name_a_bad_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_HTTP_ALLOW", "10.0.0.0/8,hooks.internal")
    assert load_settings().http_allow == ["10.0.0.0/8", "hooks.internal"]
    monkeypatch.setenv("CONVEYOR_HTTP_ALLOW", "10.0.0.0/8,bad_host!")
    with pytest.raises(InvalidInput) as caught:
        load_settings()
    assert caught.value.field == "setting http_allow"


async def test_a_keep_alive_client_reuses_its_checked_connection() -> None:
    peers: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        return web.Response(text="ok")

    async with serving(handle) as port:
        client = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"), keep_alive=True)
        try:
            for _ in range(3):
                response = await client.request("POST", f"http://127.0.0.1:{port}/")
                assert response.status == 200
            with pytest.raises(OutboundRefused):
                await client.request("POST", "http://10.0.0.5/")
        finally:
            await client.aclose()
        one_off = OutboundClient(OutboundPolicy.from_entries("127.0.0.1"))
        for _ in range(2):
            await one_off.request("POST", f"http://127.0.0.1:{port}/")
    assert len(set(peers[:3])) == 1
    assert len(set(peers[3:])) == 2 and peers[0] not in peers[3:]
