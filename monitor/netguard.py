"""Which network addresses the checker may connect to (SSRF policy). Pure.

A link on a watched page is untrusted input: a page editor (or whoever
compromised a cited domain) can point it at http://169.254.169.254/ (cloud
metadata), at the monitor's own admin port on 127.0.0.1 or at anything in
the private network the monitor runs in. Refused by default:

    IPv4   0.0.0.0/8 (unspecified)  10/8, 172.16/12, 192.168/16 (private)
           127/8 (loopback)  169.254/16 (link-local, cloud metadata)
           100.64/10 (CGNAT)  224/4 (multicast)  240/4 (reserved)
           192.0.0/24 (IETF assignments), 255.255.255.255 and the other
           special ranges `ipaddress` knows
    IPv6   ::1, ::, fc00::/7 (ULA), fe80::/10 (link-local), fec0::/10
           (site-local), ff00::/8 (multicast), and any address EMBEDDING
           a refused IPv4 one: ::ffff:a.b.c.d (mapped), 64:ff9b::/96
           (NAT64), 2002::/16 (6to4)

The policy is applied where the address is known for certain (see
`monitor/client.py`): to every address a host name resolves to, inside the
connector's resolver, so what is checked is exactly what is connected to
(DNS rebinding cannot swap it afterwards); and to IP-literal hosts, which
aiohttp never sends to a resolver, before each request and each redirect.
Both happen before a byte is sent.

`allow_private_networks` in the configuration relaxes it: `true` allows
everything; a list allows those CIDRs (matching embedded IPv4 too) and those
host names (whatever they resolve to).
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from monitor.config import CheckerSettings, Settings

__all__ = [
    "REFUSE_UNMAPPED",
    "NetworkPolicy",
    "allow_line",
    "parse_connect_to",
    "refused_watched_pages",
    "unmapped_watched_pages",
    "PrivateAddressError",
    "is_public_address",
    "legacy_ipv4",
    "parse_ip",
    "special_use",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not public, whatever this Python's `ipaddress` says: 3.11 before 3.11.9
# calls 192.0.0.0/24 (IETF protocol assignments; 192.0.0.192 is a cloud
# metadata address) global, and every version calls site-local fec0::/10
# (deprecated, still routed inside some networks) global.
_NOT_PUBLIC = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("fec0::/10"))
# 1 to 4 parts, each decimal, octal (leading 0) or hex (0x): what inet_aton,
# getaddrinfo and browsers (WHATWG) read as an IPv4 address.
_LEGACY_V4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
# RFC 6761 / 7686: names that must never reach a DNS server.
_NXDOMAIN_TLDS = frozenset({"invalid", "test", "example", "onion"})


class PrivateAddressError(OSError):
    """A connection the policy refused; never retried, never sent.

    An OSError so that aiohttp, when it meets it in the resolver, wraps it in
    ClientConnectorDNSError like any resolution failure; `check.py` looks at
    the wrapped error to tell the two apart.
    """

    def __init__(self, host: str, addresses: Iterable[str] = ()) -> None:
        self.host = host
        self.addresses = tuple(addresses)
        shown = ", ".join(self.addresses[:3]) or host
        super().__init__(errno.EACCES, f"refused by policy: {host} -> {shown} is not a public address")


def parse_ip(text: str) -> IPAddress | None:
    """An IP address from a URL host or resolver answer, or None for a name.

    Brackets and an IPv6 zone (`fe80::1%eth0`) are accepted.
    """
    text = text.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if "%" in text:
        try:
            return ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
    return None


def legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address behind a numeric host that is not dotted-quad.

    "127.1", "2130706433", "0x7f.1" and "0177.0.0.1" all mean 127.0.0.1 to
    getaddrinfo and to browsers, but `ipaddress` (and so `parse_ip`) refuses
    them. aiohttp refuses the all-digit forms itself ("not a canonical IPv4
    address") but hands the hex ones to the resolver as names, where this
    reads them the way the socket layer would: an address to check, not a
    name to send to a DNS server.
    """
    text = text.strip().removesuffix(".")
    if not _LEGACY_V4.fullmatch(text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public_address(ip: IPAddress) -> bool:
    """True for an address on the public internet, by the table above."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            if not is_public_address(embedded):
                return False
            # NAT64 sits in reserved ::/8 and mapped addresses are "private"
            # to `ipaddress`; the embedded address is the real destination.
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return True
    if any(ip.version == net.version and ip in net for net in _NOT_PUBLIC):
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )


def special_use(host: str) -> Literal["nxdomain", "loopback"] | None:
    """RFC 6761 answers given without asking DNS.

    .invalid, .test, .example (and .onion, RFC 7686) do not exist; localhost
    and *.localhost are loopback (then refused unless loopback is allowed).
    """
    name = host.rstrip(".").lower()
    tld = name.rsplit(".", 1)[-1]
    if tld == "localhost":
        return "loopback"
    if tld in _NXDOMAIN_TLDS:
        return "nxdomain"
    return None


class NetworkPolicy:
    """The SSRF policy of one checker, built from `allow_private_networks`."""

    __slots__ = ("allow_all", "networks", "hosts")

    def __init__(self, allow: bool | Iterable[str] = False, *,
                 trusted_hosts: Iterable[str] = ()) -> None:
        """`trusted_hosts` adds names the operator chose elsewhere (the proxy
        named in HTTP_PROXY) without opening anything else."""
        self.allow_all = allow is True
        networks: list[IPNetwork] = []
        hosts: set[str] = {_norm_host(h) for h in trusted_hosts if h}
        if not isinstance(allow, bool):
            for item in allow:
                try:
                    networks.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    hosts.add(_norm_host(item))
        self.networks: tuple[IPNetwork, ...] = tuple(networks)
        self.hosts: frozenset[str] = frozenset(hosts)

    @classmethod
    def from_settings(cls, settings: CheckerSettings, *,
                      trusted_hosts: Iterable[str] = ()) -> NetworkPolicy:
        return cls(settings.allow_private_networks, trusted_hosts=trusted_hosts)

    def host_allowed(self, host: str) -> bool:
        """An allow-listed host name may resolve to anything."""
        return self.allow_all or _norm_host(host) in self.hosts

    def address_allowed(self, ip: str, host: str) -> bool:
        """May we connect to `ip`, reached by resolving (or naming) `host`?"""
        if self.host_allowed(host):
            return True
        addr = parse_ip(ip)
        if addr is None:
            return False  # fail closed on anything unparseable
        if self._listed(addr):
            return True
        return is_public_address(addr)

    def literal_allowed(self, host: str) -> bool | None:
        """For an IP-literal URL host: allowed or not; None for a host name."""
        addr = parse_ip(host)
        if addr is None:
            return None
        return self.address_allowed(str(addr), host)

    def _listed(self, addr: IPAddress) -> bool:
        if not self.networks:
            return False
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address):
            if (embedded := _embedded_v4(addr)) is not None:
                candidates.append(embedded)
            if addr.scope_id:
                candidates.append(ipaddress.IPv6Address(int(addr)))  # without the zone
        return any(c.version == n.version and c in n for c in candidates for n in self.networks)

    def __repr__(self) -> str:
        if self.allow_all:
            return "NetworkPolicy(allow all)"
        allowed = [str(n) for n in self.networks] + sorted(self.hosts)
        return f"NetworkPolicy(public only, plus {allowed or 'nothing'})"


def _norm_host(host: str) -> str:
    return host.strip().rstrip(".").lower().removeprefix("[").removesuffix("]")


def allow_line(host: str) -> str:
    """The configuration line that lets the checker fetch `host` (an address,
    or a name it resolved from): what a refusal tells the webmaster to write."""
    ip = parse_ip(host)
    allowed = f"{ip}/{ip.max_prefixlen}" if ip is not None else host or "127.0.0.1/32"
    return f'allow_private_networks = ["{allowed}"] under [checker]'


def refused_watched_pages(settings: Settings, only_pages: Iterable[str] = ()) -> str | None:
    """Why the configuration watches a page the checker will refuse, known
    without a DNS query: a `[[pages]]` url or `[[sites]]` start on a private
    address written as such (127.0.0.1, 10.1.2.3, [::1]) or on localhost.

    Said before anything runs (exit 2): it was found only by the audit, which
    recorded a run that checked nothing and printed the same refusal twice per
    page, on stdout and stderr (review 13 #18). A name that resolves to a
    private address is still met (and said) by the audit. With `only_pages`
    (`check --page`, which reads no site) only those are looked at: another
    page's address does not stop the check of an allowed one (review 13b #7)."""
    from urllib.parse import urlsplit

    policy = NetworkPolicy.from_settings(settings.checker)
    refused: list[tuple[str, str, str, str]] = []
    for key, url in _watched(settings, only_pages):
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            continue
        if special_use(host) == "loopback":
            # a name: allowed by name whatever it resolves to (127.0.0.1 or ::1)
            if not policy.address_allowed("127.0.0.1", host) and not policy.address_allowed("::1", host):
                refused.append((key, url, "127.0.0.1", host.rstrip(".").lower()))
            continue
        # "127.1", "0x7f.1", "2130706433", "127.0.0.1.": what the socket layer reads
        ip = parse_ip(host.removesuffix(".")) or legacy_ipv4(host)
        if ip is not None and not policy.address_allowed(str(ip), host):
            refused.append((key, url, str(ip), str(ip)))
    if not refused:
        return None
    key, url, address, allow = refused[0]
    more = len(refused) - 1
    also = f" (and {more} more {'page' if more == 1 else 'pages'} like it)" if more else ""
    return (f"{settings.source}: {key}: {url} is on a private network address ({address}), which the "
            f"checker refuses (checker.allow_private_networks); to check it: "
            f"{allow_line(allow)}{also}")


REFUSE_UNMAPPED = ("*", "refuse")
"""The connect_to pair that turns every unmapped name into a DNS failure."""

ConnectMapping = dict[tuple[str, int], tuple[str, int]]


def _split_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ValueError(f"expected host:port, got {text!r}")
    return host.removeprefix("[").removesuffix("]").rstrip(".").lower(), int(port)


def parse_connect_to(pairs: Iterable[tuple[str, str]]) -> tuple[ConnectMapping, bool]:
    """("host:port", "ip:port") pairs -> mapping, and whether unmapped names
    are refused (the ("*", "refuse") pair). Here, not in `client` (which
    uses it), so that `check` and `run` read it before loading aiohttp."""
    mapping: ConnectMapping = {}
    refuse_others = False
    for source, target in pairs:
        if (source.strip(), target.strip().lower()) == REFUSE_UNMAPPED:
            refuse_others = True
            continue
        mapping[_split_hostport(source)] = _split_hostport(target)
    return mapping, refuse_others


def _watched(settings: Settings, only_pages: Iterable[str]) -> list[tuple[str, str]]:
    """(key in the file, url) of the pages an audit starts from: every
    `[[pages]]` url and `[[sites]]` start and sitemap, or with `only_pages`
    (`check --page`, which reads no site) the configured ones among them."""
    wanted = set(only_pages)
    watched = [(f"[[pages]] #{i + 1} url", page.url) for i, page in enumerate(settings.pages)
               if not wanted or page.url in wanted]
    for i, site in enumerate(settings.sites if not wanted else ()):
        watched += [(f"[[sites]] #{i + 1} {key}", url) for key, url in (("start", site.start),
                                                                       ("sitemap", site.sitemap)) if url]
    return watched


DEMO_MARKER = ".monitor-demo"
"""The file `monitor demo` leaves beside its demo.toml (monitor/demo/run.py's
MARKER, which is this: kept here, as that module loads aiohttp)."""


def unmapped_watched_pages(settings: Settings, only_pages: Iterable[str] = ()) -> str | None:
    """Why an audit would fetch nothing, known without a request: the
    configuration's own checker.connect_to refuses every watched page
    ("*" = "refuse", and no page's host:port mapped), so each would fail
    "refused by checker.connect_to" and the run record no link.

    Said before a run is recorded (exit 2): the demo's results-only
    demo.toml made `monitor check` record an empty run that then led the
    demo's index, "no page could be fetched" (review 15 #3). A page refused
    for a reason of the network (a refused connection, a DNS failure) is
    still met, and recorded, by the audit. Same pages as
    `refused_watched_pages`."""
    from urllib.parse import urlsplit

    mapped, refuse_unmapped = parse_connect_to(settings.checker.connect_to)
    if not refuse_unmapped:
        return None
    watched = [url for _, url in _watched(settings, only_pages)]
    watched += [url for url in dict.fromkeys(only_pages) if url not in watched]  # a --page not configured
    hosts = []
    for url in watched:
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").rstrip("."), parts.port
        except ValueError:
            return None  # the audit says what is wrong with it
        port = port or (443 if parts.scheme == "https" else 80)
        if not host or parse_ip(host) is not None or legacy_ipv4(host) is not None or special_use(host):
            return None  # an address or a special name: not looked up by connect_to's rule
        if (host, port) in mapped:
            return None
        hosts.append(host)
    if not hosts:
        return None
    named = ", ".join(dict.fromkeys(hosts[:3])) + (" ..." if len(set(hosts)) > 3 else "")
    said = (f"{settings.source}: checker.connect_to: \"*\" = \"refuse\" refuses every page to audit "
            f"({named} not mapped there): nothing would be fetched, so no audit was recorded")
    try:
        demo = Path(settings.source).with_name(DEMO_MARKER).exists()
    except (OSError, ValueError):
        demo = False
    if demo:
        return (said + "; this file of `monitor demo` only reads the demo's results: to audit again, run "
                "`monitor demo --serve` and use the demo-live.toml it writes")
    return said + "; map each page's host:port there to the address to use, or remove \"*\" = \"refuse\""
