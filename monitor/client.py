"""The HTTP client: one aiohttp session for a whole run. The only aiohttp client import.

What it adds to a plain `ClientSession`:

- the SSRF policy of `monitor/netguard.py`, enforced where the address is
  certain: a resolver (`GuardedResolver`) that checks every address a name
  resolves to (what it returns is what the connector connects to, so DNS
  rebinding cannot swap it), and request/redirect hooks that check IP-literal
  hosts, which aiohttp never sends to a resolver. Both refuse before a byte
  is sent;
- `connect_to`, like curl's --connect-to: ("host:port", "ip:port") pairs
  send a name to another address and port while the Host header and TLS SNI
  keep the original name (staging, tests, the offline demo). The pair
  ("*", "refuse") makes every unmapped name a DNS failure without a query;
- RFC 6761 special-use names (.invalid, .test, .example, .onion) fail as DNS
  errors without a query; localhost and *.localhost are loopback;
- TLS through `ssl.create_default_context()` (system store, SSL_CERT_FILE and
  SSL_CERT_DIR) plus an optional private CA file (`ca_file`); proxies from
  HTTP(S)_PROXY/NO_PROXY when any is set; header limits that take the
  12 KB Set-Cookie headers some publishers send, yet bound what a hostile
  server can make us hold (see HEADER_LIMIT).

Limits: `TCPConnector(limit=concurrency, limit_per_host=per_host)` is a
backstop; the scheduling that keeps every slot busy is `check.Checker`'s.
Behind a proxy the target's name is resolved by the proxy, so only IP
literals are checked here; the proxy is then the network boundary.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable
from types import SimpleNamespace, TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import proxies_from_env
from yarl import URL

from monitor.config import CheckerSettings
from monitor.netguard import (REFUSE_UNMAPPED, NetworkPolicy, PrivateAddressError, legacy_ipv4,
                              parse_connect_to, parse_ip, special_use)
from monitor.tls import make_ssl_context

__all__ = ["Client", "ConnectToRefusal", "GuardedResolver", "parse_connect_to", "BROWSER_ACCEPT",
           "REFUSE_UNMAPPED"]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_LANGUAGE = "en-US,en;q=0.9,*;q=0.5"
HEADER_LIMIT = 32768
"""Bytes in one header line: 2.5 times the largest Set-Cookie seen in the wild."""
MAX_HEADERS = 128
"""aiohttp's default; real answers carry 10 to 40. Together the two limits cap
the headers of one answer at 4 MB (about 9 MiB of Python objects while they
are parsed); at 64 KB x 512 a hostile server made us hold 59 MiB per answer,
per connection."""
DNS_CACHE_SECONDS = 300

def _nxdomain(host: str, why: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{host}: {why}")


class ConnectToRefusal(socket.gaierror):
    """A name refused by the ("*", "refuse") pair of checker.connect_to: a
    DNS failure to aiohttp and the classifier (no query is made, so none can
    succeed), but a policy of the configuration, not a missing name, to the
    person reading why a page was not fetched (monitor/pages.py)."""

    def __init__(self, host: str) -> None:
        super().__init__(socket.EAI_NONAME,
                         f'{host}: refused by checker.connect_to ("*" = "refuse"), not looked up')


def _result(hostname: str, ip: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return {"hostname": hostname, "host": ip, "port": port, "family": family,
            "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}


class GuardedResolver(AbstractResolver):
    """connect_to, special-use names, then DNS filtered by the SSRF policy.

    aiohttp connects to exactly the host AND port this returns (checked in
    `_convert_hosts_to_addr_infos` of aiohttp 3.14), which is how a mapping
    can change the port too.
    """

    def __init__(self, policy: NetworkPolicy, connect_to: Iterable[tuple[str, str]] = (),
                 delegate: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.mapping, self.refuse_unmapped = parse_connect_to(connect_to)
        self._delegate = delegate

    def _dns(self) -> AbstractResolver:
        if self._delegate is None:
            self._delegate = aiohttp.DefaultResolver()
        return self._delegate

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        name = host.rstrip(".").lower()
        mapped = self.mapping.get((name, port))
        if mapped is not None:
            # The operator chose this address: trusted, not policy-checked.
            target, target_port = mapped
            if parse_ip(target) is not None:
                return [_result(host, target, target_port)]
            answers = await self._dns().resolve(target, target_port, family)
            return [_result(host, a["host"], target_port) for a in answers]
        numeric = legacy_ipv4(name)
        if numeric is not None:
            # "0x7f.1" and friends: an address in disguise, not a name to look up.
            if not self.policy.address_allowed(str(numeric), name):
                raise PrivateAddressError(host, [str(numeric)])
            return [_result(host, str(numeric), port)]
        kind = special_use(name)
        if kind == "nxdomain":
            raise _nxdomain(host, "special-use name (RFC 6761), not looked up")
        if self.refuse_unmapped and kind is None:
            raise ConnectToRefusal(host)
        if kind == "loopback":
            answers = [_result(host, "127.0.0.1", port), _result(host, "::1", port)]
        else:
            answers = await self._dns().resolve(host, port, family)
        allowed = [a for a in answers if self.policy.address_allowed(a["host"], name)]
        if not allowed:
            raise PrivateAddressError(host, [a["host"] for a in answers])
        return allowed

    async def close(self) -> None:
        if self._delegate is not None:
            await self._delegate.close()


def guard_url(policy: NetworkPolicy, url: URL) -> None:
    """Refuse a request to a disallowed IP-literal host (names go to the resolver)."""
    host = url.raw_host
    # The same test as aiohttp's is_ip_address: what it sends past the
    # resolver. What looks numeric but does not parse, we cannot vouch for.
    if host and (":" in host or host.replace(".", "").isdigit()):
        if not policy.literal_allowed(host):
            raise PrivateAddressError(host, [host])


def _trace_config(policy: NetworkPolicy) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def on_start(_s: aiohttp.ClientSession, _c: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
        guard_url(policy, params.url)

    async def on_redirect(_s: aiohttp.ClientSession, _c: SimpleNamespace,
                          params: aiohttp.TraceRequestRedirectParams) -> None:
        # Only reached by callers that let aiohttp follow redirects itself;
        # check.py follows them by hand and each hop passes on_start.
        location = params.response.headers.get("Location")
        if location:
            try:
                target = params.url.join(URL(location))
            except ValueError:
                return  # aiohttp will fail on it as an invalid URL
            if target.scheme in ("http", "https"):
                guard_url(policy, target)

    trace.on_request_start.append(on_start)
    trace.on_request_redirect.append(on_redirect)
    return trace


def _proxy_hosts() -> set[str]:
    return {info.proxy.host for info in proxies_from_env().values() if info.proxy.host}


class Client:
    """Async context manager owning the ClientSession and its TCPConnector.

    Build one per run (or per service lifetime) and share it: connections,
    the DNS cache and cookies are reused across checks.
    """

    def __init__(self, settings: CheckerSettings, *, dns: AbstractResolver | None = None) -> None:
        """`dns` answers for names that connect_to does not map (default:
        aiohttp's resolver); tests pass a canned one, since no real DNS may
        be asked."""
        self.settings = settings
        self._dns = dns
        self._proxies = _proxy_hosts()
        self.policy = NetworkPolicy.from_settings(settings, trusted_hosts=self._proxies)
        self.headers = {
            "User-Agent": settings.user_agent,
            "Accept": BROWSER_ACCEPT,
            "Accept-Language": ACCEPT_LANGUAGE,
        }
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Client is not open: use `async with Client(settings) as client`")
        return self._session

    def timeout(self, seconds: float | None = None) -> aiohttp.ClientTimeout:
        """One request's limits: total, connect (not counting the wait for a
        pool slot) and the longest silence between two reads."""
        total = self.settings.timeout if seconds is None else seconds
        return aiohttp.ClientTimeout(total=total, sock_connect=total, sock_read=total)

    async def __aenter__(self) -> Client:
        s = self.settings
        extra: dict[str, Any] = {}
        if sys.version_info < (3, 12, 7):
            # Aborted TLS transports leak on older Pythons without it.
            extra["enable_cleanup_closed"] = True
        resolver = GuardedResolver(self.policy, s.connect_to, self._dns)
        connector = aiohttp.TCPConnector(
            limit=s.concurrency,
            limit_per_host=s.per_host,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            ssl=make_ssl_context(s.ca_file),
            resolver=resolver,
            **extra,
        )
        self._resolver = resolver
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            timeout=self.timeout(),
            # Proxies from HTTP(S)_PROXY/NO_PROXY. Only when some are set:
            # trust_env costs a thread hop per request (aiohttp looks the
            # proxy up in a worker thread), a third of the client's CPU.
            trust_env=bool(self._proxies),
            trace_configs=[_trace_config(self.policy)],
            max_line_size=HEADER_LIMIT,
            max_field_size=HEADER_LIMIT,
            max_headers=MAX_HEADERS,
        )
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            # The connector does not close a resolver it was given.
            await self._resolver.close()
            self._resolver = None
