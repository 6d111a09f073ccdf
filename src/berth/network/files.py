"""The per-container /etc/hosts, /etc/resolv.conf and /etc/hostname (pure generation, plus
one helper that writes them atomically)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from berth.errors import InvalidParameter

EMBEDDED_DNS = "127.0.0.11"
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$")

HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::\tip6-localnet
ff00::\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def check_hostname(name: str) -> None:
    if not name or len(name) > 253 or not _HOSTNAME.match(name):
        raise InvalidParameter(f"invalid hostname {name!r}")


def parse_extra_host(entry: str, host_gateway: str = "") -> tuple[str, str]:
    """`--add-host name:ip` (or `name=ip`; `host-gateway` = the default bridge's gateway)."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    name, ip = name.strip(), ip.strip().strip("[]")
    if not name or not ip:
        raise InvalidParameter(f"invalid IP address in add-host: {entry!r}")
    if ip == "host-gateway":
        if not host_gateway:
            raise InvalidParameter("host-gateway is not available")
        ip = host_gateway
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None
    return name, ip


@dataclass
class HostsEntry:
    ip: str
    names: list[str] = field(default_factory=list)


def hosts_file(hostname: str, domainname: str, addresses: list[str],
               extra_hosts: list[tuple[str, str]]) -> str:
    """Docker's layout: localhost lines, --add-host entries, then the container's own names."""
    lines = [HOSTS_HEADER]
    for name, ip in extra_hosts:
        lines.append(f"{ip}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        lines.append(f"{ip}\t{names}\n")
    return "".join(lines)


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> ResolvConf:
    rc = ResolvConf()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, rest = fields[0], fields[1:]
        if key == "nameserver" and rest:
            rc.nameservers.append(rest[0])
        elif key in ("search", "domain") and rest:
            rc.search = rest
        elif key == "options":
            rc.options.extend(rest)
    return rc


def _is_loopback(ns: str) -> bool:
    try:
        return ipaddress.ip_address(ns.split("%")[0]).is_loopback
    except ValueError:
        return False


def upstream_servers(host: ResolvConf, dns: list[str]) -> list[str]:
    """Where names a container cannot resolve locally are sent: --dns, else the host's."""
    return list(dns) if dns else list(host.nameservers) or list(DEFAULT_NAMESERVERS)


def resolv_conf(host: ResolvConf, dns: list[str], dns_search: list[str],
                dns_options: list[str] | None = None, embedded: bool = False) -> str:
    """A container's resolv.conf.

    On the default bridge the host's nameservers are copied, without loopback ones (they
    would point into the container itself); if none remain Docker's defaults are used. On
    user networks the embedded resolver (127.0.0.11) answers and forwards the rest.
    """
    search = list(dns_search) if dns_search else list(host.search)
    options = list(dns_options) if dns_options else list(host.options)
    out: list[str] = []
    if embedded:
        ext = upstream_servers(host, dns)
        out.append(f"# berth embedded DNS; external servers: {', '.join(ext)}")
        servers = [EMBEDDED_DNS]
        if "ndots:0" not in options and not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
    else:
        servers = list(dns) if dns else [ns for ns in host.nameservers if not _is_loopback(ns)]
        if not servers:
            servers = list(DEFAULT_NAMESERVERS)
    for ns in servers:
        out.append(f"nameserver {ns}")
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
