"""Checks of one endpoint's settings (an `EndpointsConfig` entry of a create, or the
`EndpointConfig` of a `network connect`), worded as dockerd words them. Pure: the caller
says what it knows of the network.

dockerd (daemon/container_operations.go `validateEndpointSettings`) collects the address,
alias and per-endpoint sysctl errors and joins them (moby's multierror); a malformed MAC
address is answered on its own; libnetwork later refuses a link-local address outside
169.254/16 or fe80::/10.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from berth.errors import InvalidParameter

USER_NETWORKS_ONLY = "user specified IP address is supported on user defined networks only"
NO_USER_SUBNET = "user specified IP address is supported only when connecting to networks with user configured subnets"
ALIAS_USER_NETWORKS_ONLY = "network-scoped alias is supported only for containers in user defined networks"
PREDEFINED = ("default", "bridge", "host", "none")
# libnetwork's netlabel.EndpointSysctls (API 1.46): DriverOpts key whose value is a comma-
# separated list of `net.X.Y.IFNAME.Z=V`, set on the endpoint's interface in the container
SYSCTLS_OPT = "com.docker.network.endpoint.sysctls"
SYSCTL_FAMILIES = ("ipv4", "ipv6", "mpls")

# Go's net.ParseMAC spellings of an EUI-48 (the only length a veth takes)
_MAC = (re.compile(r"^[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$"),
        re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$"))


@dataclass
class NetworkFacts:
    """What the checks need of the network an endpoint joins (None: not known yet, as
    dockerd, which skips the subnet checks for a network that does not exist at create)."""

    user_defined: bool
    static4: bool = True     # IPv4 subnet given at network create
    ipv6: bool = False       # the network has an IPv6 subnet
    static6: bool = True


def user_defined_name(name: str) -> bool:
    """dockerd's NetworkMode.IsUserDefined for a name (or EndpointsConfig key)."""
    return name not in PREDEFINED and not name.startswith("container:")


def join(errors: list[str]) -> str:
    """moby's multierror.Join: one error as itself, several as a bulleted list."""
    if len(errors) == 1:
        return errors[0].strip()
    return "* " + "\n* ".join(e.replace("\n", "\n\t") for e in errors)


def parse_mac(mac: str) -> str:
    """A unicast EUI-48 in lower-case colon form, else dockerd's `invalid MAC address`
    (a multicast one is refused here too: the kernel would refuse it at start)."""
    if not any(p.match(mac) for p in _MAC):
        raise InvalidParameter(f"invalid MAC address {mac}")
    digits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if int(digits[:2], 16) & 1:
        raise InvalidParameter(f"invalid MAC address {mac}")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def link_local_addresses(ips: list[str]) -> list[tuple[str, int]]:
    """(address, prefix length) of each link-local address as libnetwork adds it: /16 for
    IPv4, /64 for IPv6; one outside 169.254/16 or fe80::/10 is refused with its words."""
    out = []
    for raw in ips:
        addr = ipaddress.ip_address(raw)   # callers ran `errors` first: it parses
        if not addr.is_link_local:
            raise InvalidParameter(f"invalid link local IP address: {raw}")
        out.append((str(addr), 16 if addr.version == 4 else 64))
    return out


def family_disabled(version: int, addr: str, network: str) -> str:
    """berth's words for an address asked for in a family the network does not have (an
    IPv6 one without --ipv6, an IPv4 one with --ipv4=false)."""
    how = "with --ipv6" if version == 6 else "without --ipv4=false"
    return (f"invalid IPv{version} address {addr}: network {network} does not have IPv{version} enabled "
            f"(create it {how})")


def requested(settings: dict | None) -> tuple[list[str], str, str, str, list[str]]:
    """(aliases, IPv4, IPv6, MAC, link-local addresses) an EndpointSettings asks for."""
    ep = settings or {}
    ipam = ep.get("IPAMConfig") or {}
    return (list(ep.get("Aliases") or []), str(ipam.get("IPv4Address") or ""), str(ipam.get("IPv6Address") or ""),
            str(ep.get("MacAddress") or ""), [str(a) for a in ipam.get("LinkLocalIPs") or []])


def endpoint_sysctls(driver_opts: dict | None) -> list[str]:
    """The sysctls an endpoint's DriverOpts set on its interface, as libnetwork's
    Endpoint.getSysctls reads them (none unless the option is a string)."""
    value = (driver_opts or {}).get(SYSCTLS_OPT)
    return value.split(",") if isinstance(value, str) else []


def _sysctl_errors(driver_opts: dict | None) -> list[str]:
    """validateEndpointSettings' check of the per-endpoint sysctls: each names the
    interface as IFNAME (or `ifname`: the docker CLI lower-cases its --network field) in
    an ipv4, ipv6 or mpls sysctl. An empty option counts (as one empty sysctl)."""
    opts = driver_opts or {}
    if SYSCTLS_OPT not in opts:
        return []
    errs = []
    for sysctl in str(opts[SYSCTLS_OPT]).split(","):
        parts = sysctl.split(".", 4)
        if len(parts) != 5 or parts[1] not in SYSCTL_FAMILIES or parts[3] not in ("IFNAME", "ifname"):
            errs.append(f"unrecognised network interface sysctl '{sysctl}'; represent 'net.X.Y.ethN.Z=V' as "
                        "'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'")
    return errs


def _address_errors(ipam: dict) -> list[str]:
    """EndpointIPAMConfig.Validate: each address parses, in its family, and is specified."""
    errs = []
    for key, version in (("IPv4Address", 4), ("IPv6Address", 6)):
        raw = str(ipam.get(key) or "")
        if raw and not _parses(raw, version):
            errs.append(f"invalid IPv{version} address: {raw}")
    for raw in ipam.get("LinkLocalIPs") or []:
        if not _parses(str(raw), None):
            errs.append(f"invalid link-local IP address: {raw}")
    return errs


def _parses(raw: str, version: int | None) -> bool:
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return False
    return not addr.is_unspecified and (version is None or addr.version == version)


def errors(settings: dict | None, net: NetworkFacts | None, name: str) -> list[str]:
    """The endpoint-settings errors dockerd collects, in its order (empty: valid). `name`
    is the network as the request names it. A bad MAC address is not among them: see
    `check`, which answers it on its own as dockerd does."""
    ep = settings or {}
    ipam = ep.get("IPAMConfig") or {}
    v4, v6 = str(ipam.get("IPv4Address") or ""), str(ipam.get("IPv6Address") or "")
    user = net.user_defined if net is not None else user_defined_name(name)
    errs = []
    if not user:
        if v4 or v6:
            errs.append(USER_NETWORKS_ONLY)
        if ep.get("Aliases"):
            errs.append(ALIAS_USER_NETWORKS_ONLY)
    errs += _address_errors(ipam)
    if net is not None:
        if v4 and user and not net.static4:
            errs.append(NO_USER_SUBNET)
        if v6 and not net.ipv6:
            # berth's own words (dockerd's would be NO_USER_SUBNET): the way out is --ipv6
            errs.append(family_disabled(6, v6, name))
        elif v6 and user and not net.static6:
            errs.append(NO_USER_SUBNET)
    return errs + _sysctl_errors(ep.get("DriverOpts"))


def check(settings: dict | None, net: NetworkFacts | None, name: str, prefix: str = "") -> None:
    """Raise dockerd's 400 for invalid settings: `prefix` is create's `invalid config for
    network NAME: ` (a connect has none)."""
    ep = settings or {}
    errs = errors(ep, net, name)
    mac = str(ep.get("MacAddress") or "")
    if mac:
        try:
            parse_mac(mac)
        except InvalidParameter as exc:
            raise InvalidParameter(prefix + str(exc)) from None
    if errs:
        raise InvalidParameter(f"{prefix}invalid endpoint settings:\n{join(errs)}")
    link_local_addresses([str(a) for a in (ep.get("IPAMConfig") or {}).get("LinkLocalIPs") or []])
