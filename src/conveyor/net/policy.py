"""Which addresses an outbound call may reach: the refused ranges and the allowlist.

By default only publicly routable addresses may be called. Loopback, private
(RFC 1918, ``fc00::/7``), link-local (``169.254.0.0/16`` with the cloud metadata
address, ``fe80::/10``), site-local (``fec0::/10``), multicast, unspecified,
reserved and shared (CGNAT, ``100.64.0.0/10``) addresses are refused, also when
embedded in an IPv6 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``).
The operator's allowlist (setting ``http_allow``) lets chosen networks and host
names through.

Standard library only: the settings import it to validate ``http_allow``; the
aiohttp client that applies it is :mod:`conveyor.net.guard`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conveyor.domain.errors import ConveyorError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "http_allow"
ALLOW_ENV = "CONVEYOR_HTTP_ALLOW"
ALLOW_HINT = f"; add it to {ALLOW_SETTING} ({ALLOW_ENV}) to permit it"

SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
"""RFC 6598, used by carrier-grade NAT; Python counts it neither private nor global."""
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
"""RFC 1918 and unique local addresses."""
CLOUD_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
"""Instance metadata endpoints (AWS, GCP, Azure, OpenStack; AWS IPv6; Alibaba)."""

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")

_REFUSED: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda a: a in CLOUD_METADATA, "cloud metadata address"),
    (lambda a: a.is_unspecified, "unspecified address"),
    (lambda a: a.is_loopback, "loopback address"),
    (lambda a: a.is_link_local, "link-local address"),
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "site-local address"),
    (lambda a: a.is_multicast, "multicast address"),
    (lambda a: a in SHARED_ADDRESS_SPACE, "shared address space (CGNAT)"),
    (lambda a: any(a in net for net in PRIVATE_NETWORKS), "private address"),
    (lambda a: a.is_reserved, "reserved address"),
    (lambda a: a.is_private or not a.is_global, "non-public address"),
)
"""Checked in order: the first match names the reason (127.0.0.1 is also "private"
to Python, but "loopback" says more)."""


class OutboundRefused(ConveyorError):
    """The outbound call was refused: Conveyor may not call that address."""

    def __init__(self, target: str, reason: str, hint: str = ALLOW_HINT) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"refused to call {target} ({reason}){hint}")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64 or 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be called by default, or ``None`` if it is public."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = refusal_reason(inner)
        return f"{reason}, embedded in IPv6" if reason else None
    for matches, reason in _REFUSED:
        if matches(address):
            return reason
    return None


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one (``[::1]`` brackets allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def split_entries(value: str | Iterable[str]) -> list[str]:
    """Allowlist entries from a setting: a list, a JSON list, or a comma- or
    space-separated string (``"10.0.0.0/8, hooks.internal"``)."""
    if not isinstance(value, str):
        return [str(entry) for entry in value]
    text = value.strip()
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(ALLOW_SETTING, f"is not a valid JSON list ({exc.msg})") from None
        if not isinstance(loaded, list):
            raise InvalidInput(ALLOW_SETTING, "must be a list")
        return [str(entry) for entry in loaded]
    return [entry for entry in re.split(r"[\s,]+", text) if entry]


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses outbound calls may reach: public ones, plus the allowlist.

    Build it with :meth:`from_entries`; entries are networks (``10.0.0.0/8``),
    single addresses, host names (``hooks.internal``) and wildcards (``*.internal``
    matches every name under ``internal``, not ``internal`` itself).
    """

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()

    @classmethod
    def from_entries(cls, entries: str | Iterable[str] = ()) -> OutboundPolicy:
        """A policy allowing the given entries; a bad entry raises ``InvalidInput``."""
        return cls().extended(entries)

    def extended(self, entries: str | Iterable[str]) -> OutboundPolicy:
        """This policy with more entries allowed."""
        networks, hosts, domains = list(self.networks), set(self.hosts), list(self.domains)
        for entry in split_entries(entries):
            text = entry.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(text):
                raise InvalidInput(
                    ALLOW_SETTING,
                    f"{entry!r} is not a network (10.0.0.0/8), an address or a host name",
                )
            if text.startswith("*."):
                domains.append(text[1:])
            else:
                hosts.add(text)
        return OutboundPolicy(tuple(dict.fromkeys(networks)), frozenset(hosts), tuple(domains))

    def allows_host(self, host: str) -> bool:
        """Whether the host name itself is allowlisted (then any address it has is)."""
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(domain) for domain in self.domains)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether the address is public or in an allowlisted network."""
        if refusal_reason(address) is None:
            return True
        inner = embedded_ipv4(address)
        return any(address in net or (inner is not None and inner in net) for net in self.networks)

    def check(self, host: str, address: IPAddress) -> None:
        """Raise ``OutboundRefused`` unless ``host`` at ``address`` may be called."""
        if self.allows_host(host) or self.allows_address(address):
            return
        target = str(address) if ip_literal(host) == address else f"{host} at {address}"
        raise OutboundRefused(target, refusal_reason(address) or "refused")
