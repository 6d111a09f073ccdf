"""network create/ls/inspect/rm/connect/disconnect/prune."""

from __future__ import annotations

from berth.cli import format as fmt
from berth.cli.client import CLIError, path_part
from berth.cli.commands.common import confirmed, filters_param, prune
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, STRINGS, Flag, Parsed, Spec

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

CREATE = Spec("network create", "[OPTIONS] NETWORK", [
    Flag("attachable", BOOL, help="Enable manual container attachment"),
    Flag("aux-address", LIST, shows="map", help="Auxiliary IPv4 or IPv6 addresses used by Network driver"),
    Flag("driver", STR, "d", default="bridge", help="Driver to manage the Network"),
    Flag("gateway", STRINGS, help="IPv4 or IPv6 Gateway for the master subnet"),
    Flag("internal", BOOL, help="Restrict external access to the network"),
    Flag("ip-range", STRINGS, help="Allocate container ip from a sub-range"),
    Flag("ipam-driver", STR, default="default", help="IP Address Management Driver"),
    Flag("ipam-opt", LIST, shows="map", help="Set IPAM driver specific options"),
    Flag("ipv4", BOOL, default=True, help="Enable or disable IPv4 address assignment"),
    Flag("ipv6", BOOL, help="Enable or disable IPv6 networking"),
    Flag("label", LIST, help="Set metadata on a network"),
    Flag("opt", LIST, "o", shows="map", help="Set driver specific options"),
    Flag("scope", STR, help="Control the network's scope"),
    Flag("subnet", STRINGS, help="Subnet in CIDR format that represents a network segment"),
], min_args=1, max_args=1, help="Create a network")


def _kv(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def _subnet_matches(subnet: str, data: str) -> bool:
    """docker's subnetMatches: whether subnet holds data's address (data an address or a
    CIDR whose address counts); an unparsable address matches nothing."""
    import ipaddress

    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise CLIError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    try:
        if "/" in data:
            ip = ipaddress.ip_interface(data).ip
        else:
            ip = ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise CLIError(f"invalid CIDR address: {data}") from None
        return False
    return ip.version == net.version and ip in net


def ipam_config(subnets: list[str], gateways: list[str], ranges: list[str],
                aux: list[str]) -> list[dict[str, Any]]:
    """IPAM.Config as docker's consolidateIpam builds it: each --gateway/--ip-range/
    --aux-address goes with the --subnet holding it; its refusals in its words (exit 1).
    A malformed lone subnet is left to the daemon, as docker leaves it."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for s in subnets:
        for other in configs:
            if _subnet_matches(s, other) or _subnet_matches(other, s):
                raise CLIError("multiple overlapping subnet configuration is not supported")
        configs[s] = {"Subnet": s}

    def place(key: str, value: str, what: str) -> None:
        matched = False
        for s, cfg in configs.items():
            if not _subnet_matches(s, value):
                continue
            if key in cfg:
                if key == "Gateway":
                    raise CLIError(f"cannot configure multiple gateways ({value}, {cfg[key]}) for the same subnet ({s})")
                raise CLIError(f"cannot configure multiple ranges ({value}, {cfg[key]}) on the same subnet ({s})")
            cfg[key] = value
            matched = True
        if not matched:
            raise CLIError(f"no matching subnet for {what} {value}")
    for r in ranges:
        place("IPRange", r, "range")
    for g in gateways:
        place("Gateway", g, "gateway")
    for name, addr in _kv(aux).items():
        owners = [cfg for s, cfg in configs.items() if _subnet_matches(s, addr)]
        if not owners:
            raise CLIError(f"no matching subnet for aux-address {addr}")
        for cfg in owners:
            cfg.setdefault("AuxiliaryAddresses", {})[name] = addr
    return list(configs.values())


def cmd_create(ctx: Context, p: Parsed) -> int:
    body: dict[str, Any] = {
        "Name": p.args[0], "CheckDuplicate": True, "Driver": p.driver or "bridge",
        "Internal": p.internal, "Attachable": p.attachable,
        "Options": _kv(p.opt), "Labels": _kv(p.label),
        "IPAM": {"Driver": p.ipam_driver or "default", "Options": _kv(p.ipam_opt),
                 "Config": ipam_config(p.subnet, p.gateway, p.ip_range, p.aux_address)},
    }
    # sent only when given, as docker does: unset leaves the daemon's default
    if "ipv4" in p.given:
        body["EnableIPv4"] = p.ipv4
    if "ipv6" in p.given:
        body["EnableIPv6"] = p.ipv6
    if p.scope:
        body["Scope"] = p.scope
    res = ctx.client.post("/networks/create", body=body) or {}
    if res.get("Warning"):
        ctx.warn(f"WARNING: {res['Warning']}")
    ctx.print(res.get("Id", ""))
    return 0


LS = Spec("network ls", "[OPTIONS]", [
    Flag("filter", LIST, "f", shows="filter", help="Provide filter values (e.g. \"driver=bridge\")"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("no-trunc", BOOL, help="Do not truncate the output"),
    Flag("quiet", BOOL, "q", help="Only display network IDs"),
], max_args=0, help="List networks")

NET_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def cmd_ls(ctx: Context, p: Parsed) -> int:
    nets = ctx.client.get("/networks", {"filters": filters_param(p.filter)}) or []
    nets = sorted(nets, key=lambda n: n.get("Name", ""))
    trunc = not p.no_trunc
    if p.quiet:
        for n in nets:
            ctx.print(fmt.short_id(n["Id"]) if trunc else n["Id"])
        return 0
    rows = [{"ID": fmt.short_id(n.get("Id", "")) if trunc else n.get("Id", ""), "Name": n.get("Name", ""),
             "Driver": n.get("Driver", ""), "Scope": n.get("Scope", "local"),
             "IPv4": "true" if n.get("EnableIPv4") else "false",   # docker's: false where the daemon omits it
             "IPv6": "true" if n.get("EnableIPv6") else "false",
             "Internal": "true" if n.get("Internal") else "false",
             "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
             "CreatedAt": n.get("Created", "")} for n in nets]
    cols = ["ID", "Name", "Driver", "Scope"]
    ctx.out.write(fmt.listing(p.format, rows, NET_HEADERS, cols))
    return 0


INSPECT = Spec("network inspect", "[OPTIONS] NETWORK [NETWORK...]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
    Flag("verbose", BOOL, "v", help="Verbose output for diagnostics"),
], min_args=1, help="Display detailed information on one or more networks")


def cmd_inspect(ctx: Context, p: Parsed) -> int:
    from berth.cli.commands.system import inspect_each

    return inspect_each(ctx, p.args, lambda name: (f"/networks/{path_part(name)}", {"verbose": p.verbose or None}), p.format)


RM = Spec("network rm", "NETWORK [NETWORK...]", [
    Flag("force", BOOL, "f", help="Do not error if the network does not exist"),
], min_args=1, help="Remove one or more networks")


def cmd_rm(ctx: Context, p: Parsed) -> int:
    def rm(name: str) -> str | None:
        try:
            ctx.client.delete(f"/networks/{path_part(name)}")
        except CLIError as exc:
            if p.force and getattr(exc, "http_status", 0) == 404:
                return None
            raise
        return name
    return ctx.for_each(p.args, rm)


CONNECT = Spec("network connect", "[OPTIONS] NETWORK CONTAINER", [
    Flag("alias", STRINGS, help="Add network-scoped alias for the container"),
    Flag("driver-opt", STRINGS, help="driver options for the network"),
    Flag("ip", STR, help="IPv4 address (e.g., \"172.30.100.104\")"),
    Flag("ip6", STR, help="IPv6 address (e.g., \"2001:db8::33\")"),
    Flag("link", LIST, help="Add link to another container"),
    Flag("link-local-ip", STRINGS, help="Add a link-local address for the container"),
], min_args=2, max_args=2, help="Connect a container to a network")


def cmd_connect(ctx: Context, p: Parsed) -> int:
    net, container = p.args
    ep: dict[str, Any] = {"Aliases": p.alias or None, "Links": p.link or None,
                          "DriverOpts": _kv(p.driver_opt) or None}
    if p.ip or p.ip6 or p.link_local_ip:
        ep["IPAMConfig"] = {"IPv4Address": p.ip or "", "IPv6Address": p.ip6 or "",
                            "LinkLocalIPs": p.link_local_ip or None}
    ctx.client.post(f"/networks/{path_part(net)}/connect",
                    body={"Container": container, "EndpointConfig": ep})
    return 0


DISCONNECT = Spec("network disconnect", "[OPTIONS] NETWORK CONTAINER", [
    Flag("force", BOOL, "f", help="Force the container to disconnect from a network"),
], min_args=2, max_args=2, help="Disconnect a container from a network")


def cmd_disconnect(ctx: Context, p: Parsed) -> int:
    net, container = p.args
    ctx.client.post(f"/networks/{path_part(net)}/disconnect",
                    body={"Container": container, "Force": p.force})
    return 0


PRUNE = Spec("network prune", "[OPTIONS]", [
    Flag("filter", LIST, shows="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
], max_args=0, help="Remove all unused networks")


def cmd_prune(ctx: Context, p: Parsed) -> int:
    if not confirmed(ctx, p.force,
                     "WARNING! This will remove all custom networks not used by at least one container."):
        return 0
    prune(ctx, "networks", {"filters": filters_param(p.filter)}, blank_line=False)   # no size line
    return 0


COMMANDS = {
    "create": (CREATE, cmd_create), "ls": (LS, cmd_ls), "inspect": (INSPECT, cmd_inspect),
    "rm": (RM, cmd_rm), "connect": (CONNECT, cmd_connect), "disconnect": (DISCONNECT, cmd_disconnect),
    "prune": (PRUNE, cmd_prune),
}
