"""Legacy links (`--link TARGET[:ALIAS]`), kept as dockerd keeps them.

A link holds its target by ID, so renaming either side keeps it: inspect's `HostConfig.Links`
shows `/TARGET'S NAME NOW:/LINKER'S NAME NOW/ALIAS`, and a start after the rename writes the
target's current name into /etc/hosts and `ALIAS_NAME=/LINKER/ALIAS` into the environment
(the alias never changes). A removed target stays in the link under its last name: the
linker then refuses to start, as dockerd's does, even if another container takes that name.

In the `containers` table a link is the record's `links` list, and the stored
`HostConfig.Links` names the target by ID (`/ID:/LINKER/ALIAS`): the network service reads
that to answer ALIAS for the linker on user networks, and matches container IDs as well as
names, so the alias follows renames there too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.errors import Conflict, InvalidParameter

if TYPE_CHECKING:   # the container record imports this module
    from berth.engine.container import Container


@dataclass
class Link:
    target_id: str    # "" for a link read from a record older than links by ID, until resolved
    target_name: str  # its name as last seen: renames update it, a removal leaves it
    alias: str

    def shown(self, linker: str) -> str:
        """As dockerd shows it: /TARGET:/LINKER/ALIAS."""
        return f"/{self.target_name}:/{linker}/{self.alias}"

    def stored(self, linker: str) -> str:
        return f"/{self.target_id or self.target_name}:/{linker}/{self.alias}"


def parse(link: str) -> tuple[str, str]:
    """`NAME[:ALIAS]` as given, or `/NAME:/ME/ALIAS` as stored -> (NAME, ALIAS)."""
    target, _, alias = link.partition(":")
    target = target.lstrip("/")
    return target, alias.rpartition("/")[2] or target


def from_record(doc: dict[str, Any]) -> list[Link]:
    """The links of a stored record; an older record has only `HostConfig.Links` by name."""
    if "links" in doc:
        return [Link(*entry) for entry in doc["links"]]
    return [Link("", *parse(link)) for link in (doc.get("host_config") or {}).get("Links") or []]


def to_record(links: list[Link]) -> list[list[str]]:
    return [[link.target_id, link.target_name, link.alias] for link in links]


def resolve(host_config: dict[str, Any], get: Callable[[str], Container]) -> list[Link]:
    """A create's `HostConfig.Links`, checked as dockerd checks them; `get(ref)` raises
    dockerd's error for an unknown target."""
    given = [parse(link) for link in host_config.get("Links") or []]
    if given:
        mode = host_config.get("NetworkMode") or "default"
        for kind in ("host", "container"):
            if mode == kind or mode.startswith(kind + ":"):
                raise InvalidParameter(f"conflicting options: {kind} type network{'ing' if kind == 'host' else ''}"
                                       " can't be used with links. This would result in undefined behavior")
    links = []
    for target, alias in given:
        c = get(target)
        links.append(Link(c.id, c.name, alias))
    return links


def renamed(links: list[Link], target_id: str, name: str) -> bool:
    """The target `target_id` is now called `name`; True if one of `links` names it."""
    hits = [link for link in links if link.target_id == target_id]
    for link in hits:
        link.target_name = name
    return bool(hits)


def start_settings(c: Container, lookup: Callable[[str], Container | None]) -> tuple[list[str], list[str]]:
    """Legacy links on the default bridge: the /etc/hosts entries (--add-host form, one per
    link, `ALIAS HOSTNAME NAME:IP`: the hosts file takes the names as they are, one line)
    and the variables (ALIAS_NAME, ALIAS_PORT_..., ALIAS_ENV_...) dockerd gives. On a user
    network a link is only a name the embedded DNS answers for the linking container.
    `lookup(id)` is the container or None."""
    mode = c.host_config.get("NetworkMode") or "default"
    if mode not in ("default", "bridge"):
        return [], []
    hosts: list[str] = []
    variables: list[str] = []
    for link in c.links:
        target = lookup(link.target_id)
        link_name = f"/{c.name}/{link.alias}"
        if target is None or not target.running:
            raise Conflict(f"Cannot link to a non running container: /{link.target_name} AS {link_name}")
        ip = ((target.network_settings.get("Networks") or {}).get("bridge") or {}).get("IPAddress")
        if not ip:
            raise InvalidParameter(f"Cannot link to /{target.name}, as it does not belong to the default network")
        hosts.append(f"{' '.join(hosts_names(link.alias, target))}:{ip}")
        variables += env(link.alias, link_name, ip, target.config)
    return hosts, variables


def hosts_names(alias: str, target: Container) -> list[str]:
    """The names of one link's /etc/hosts line, as dockerd writes them (one line per link):
    the alias, the target's hostname, then its name unless that is the alias (a hostname
    equal to the alias is written twice, as dockerd does)."""
    names = [alias, target.config.get("Hostname") or target.id[:12]]
    return names if alias == target.name else [*names, target.name]


def env(alias: str, link_name: str, ip: str, target_config: dict[str, Any]) -> list[str]:
    """dockerd's link variables: ALIAS_PORT (the lowest exposed port), ALIAS_PORT_N_PROTO*
    per exposed port, ALIAS_NAME, and ALIAS_ENV_X for the target's variables (but HOME, PATH)."""
    prefix = alias.upper().replace("-", "_")
    ports = []
    for spec in target_config.get("ExposedPorts") or {}:
        port, _, proto = spec.partition("/")
        if port.isdigit():
            ports.append((int(port), proto or "tcp"))
    ports.sort(key=lambda p: (p[0], p[1] != "tcp"))
    out = [f"{prefix}_PORT={ports[0][1]}://{ip}:{ports[0][0]}"] if ports else []
    for port, proto in ports:
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}", f"{key}_PROTO={proto}"]
    out.append(f"{prefix}_NAME={link_name}")
    for item in target_config.get("Env") or []:
        key, sep, value = item.partition("=")
        if sep and key not in ("HOME", "PATH"):
            out.append(f"{prefix}_ENV_{key}={value}")
    return out
