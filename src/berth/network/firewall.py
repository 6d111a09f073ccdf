"""berth's firewall rules, as data, applied by one function.

Every rule lives in berth's own chains, named from the firewall prefix (upper-cased):
`P-FORWARD` and `P-ISOLATION` (filter), `P-DNAT` and `P-POSTROUTING` (nat), in iptables
for IPv4 and, while at least one network has IPv6, the same chains in ip6tables for it.
The only touch of the built-in chains is one jump rule each. `apply()` computes the whole
desired state from the networks and published ports and installs it with one
`iptables-restore --noflush` (`ip6tables-restore`) per table: our chains are re-declared
(which flushes them), refilled, jump rules inserted if missing and de-duplicated. Running
it again is a no-op, so it is also the reconciliation done at daemon start. With no IPv6
network the IPv6 chains and jumps are removed. `remove_all()` deletes the jumps and our
chains of both families and nothing else.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from berth.errors import BerthError

SUFFIXES = {"filter": ("FORWARD", "ISOLATION"), "nat": ("DNAT", "POSTROUTING")}
TABLES = ("filter", "nat")
# the programs of each IP version: (save, restore)
TOOLS = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}
HOST_BITS = {4: 32, 6: 128}


@dataclass(frozen=True)
class NetworkRule:
    """What the firewall needs to know about one bridge network (`subnet`, `subnet6`: its
    IPv4 and IPv6 subnets, "" for a family not enabled on it: an IPv6-only network has
    no IPv4 subnet, so no iptables rule)."""

    bridge: str
    subnet: str
    internal: bool = False
    subnet6: str = ""

    def subnet_of(self, version: int) -> str:
        return self.subnet if version == 4 else self.subnet6


@dataclass(frozen=True)
class PortRule:
    """One published port: host side -> container side on a bridge. The container address
    says the IP version of the rule."""

    proto: str
    host_ip: str        # "" / "0.0.0.0" / "::" = every local address of the rule's version
    host_port: int
    container_ip: str
    container_port: int
    bridge: str

    @property
    def version(self) -> int:
        return 6 if ":" in self.container_ip else 4

    @property
    def any_host_ip(self) -> bool:
        return self.host_ip in ("", "0.0.0.0", "::")

    @property
    def destination(self) -> str:
        """DNAT's --to-destination (an IPv6 address in brackets)."""
        ip = f"[{self.container_ip}]" if self.version == 6 else self.container_ip
        return f"{ip}:{self.container_port}"


@dataclass
class Ruleset:
    """The desired state: chains per table and the jumps into them from built-in chains."""

    chains: dict[str, dict[str, list[str]]] = field(default_factory=dict)   # table -> chain -> rules
    jumps: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # table -> [(builtin, rule)]


def empty_ruleset() -> Ruleset:
    """No chains, no jumps: installing it removes ours."""
    return Ruleset(chains={t: {} for t in TABLES}, jumps={t: [] for t in TABLES})


def chain_names(prefix: str) -> dict[str, list[str]]:
    p = prefix.upper()
    return {table: [f"{p}-{s}" for s in sfx] for table, sfx in SUFFIXES.items()}


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def build(prefix: str, networks: list[NetworkRule], ports: list[PortRule], version: int = 4) -> Ruleset:
    """The rules of one IP version, for the networks with a subnet of that version (every
    network but the IPv6-only ones in IPv4, those with IPv6 in IPv6); IPv6 has nothing at
    all (no chains, no jumps) when no network has IPv6."""
    networks = [n for n in networks if n.subnet_of(version)]
    ports = [pr for pr in ports if pr.version == version]
    if version == 6 and not networks:
        return empty_ruleset()
    p = prefix.upper()
    host = HOST_BITS[version]
    fwd, iso, dnat, post = f"{p}-FORWARD", f"{p}-ISOLATION", f"{p}-DNAT", f"{p}-POSTROUTING"
    f_fwd: list[str] = [f"-j {iso}"]
    f_iso: list[str] = []
    n_dnat: list[str] = []
    n_post: list[str] = []
    internal = {n.bridge for n in networks if n.internal}
    for n in networks:
        b = n.bridge
        if n.internal:
            f_iso.append(f"-i {b} ! -o {b} -j DROP")
            f_iso.append(f"! -i {b} -o {b} -j DROP")
        for other in networks:
            if other.bridge != b:
                f_iso.append(f"-i {b} -o {other.bridge} -j DROP")
        if n.internal:
            f_fwd.append(f"-i {b} -o {b} -j ACCEPT")
            continue
        f_fwd.append(f"-o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        for pr in ports:
            if pr.bridge == b:
                f_fwd.append(f"-d {pr.container_ip}/{host} -o {b} -p {pr.proto} -m {pr.proto} "
                             f"--dport {pr.container_port} -j ACCEPT")
        f_fwd.append(f"-i {b} ! -o {b} -j ACCEPT")
        f_fwd.append(f"-i {b} -o {b} -j ACCEPT")
        n_post.append(f"-s {n.subnet_of(version)} ! -o {b} -j MASQUERADE")
    for n in networks:
        # from the host's own addresses (127.0.0.1 through route_localnet) and hairpin
        # through a published port
        n_post.append(f"-o {n.bridge} -m addrtype --src-type LOCAL -j MASQUERADE")
        n_post.append(f"-s {n.subnet_of(version)} -o {n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
    if version == 6:
        # IPv6 has no route_localnet: the kernel will not send ::1's packets out of a bridge,
        # so [::1] is left to the daemon's loopback proxy (proxy.LoopbackProxy)
        n_dnat.append("-d ::1/128 -j RETURN")
    for pr in ports:
        if pr.bridge in internal or (version == 6 and _is_loopback(pr.host_ip)):
            continue
        dst = "" if pr.any_host_ip else f"-d {pr.host_ip}/{host} "
        n_dnat.append(f"{dst}-p {pr.proto} -m {pr.proto} --dport {pr.host_port} -j DNAT "
                      f"--to-destination {pr.destination}")
    return Ruleset(
        chains={"filter": {fwd: f_fwd, iso: f_iso}, "nat": {dnat: n_dnat, post: n_post}},
        jumps={"filter": [("FORWARD", f"-j {fwd}")],
               "nat": [("PREROUTING", f"-m addrtype --dst-type LOCAL -j {dnat}"),
                       ("OUTPUT", f"-m addrtype --dst-type LOCAL -j {dnat}"),
                       ("POSTROUTING", f"-j {post}")]})


def _builtin_jumps(saved: str, ours: set[str]) -> list[tuple[str, str]]:
    """(chain, rule) of every rule in a built-in chain jumping to one of our chains."""
    found = []
    for line in saved.splitlines():
        if not line.startswith("-A "):
            continue
        chain, _, rule = line[3:].partition(" ")
        if chain in ours:
            continue
        words = rule.split()
        if "-j" in words and words.index("-j") + 1 < len(words) and words[words.index("-j") + 1] in ours:
            found.append((chain, rule))
    return found


def _existing_chains(saved: str) -> set[str]:
    return {line[1:].split()[0] for line in saved.splitlines() if line.startswith(":")}


def _in_place(saved: str, chains: dict[str, list[str]], jumps: list[tuple[str, str]], ours: set[str]) -> bool:
    """True when `saved` already holds exactly the wanted chains, rules and jumps, so the
    restore (a kernel commit: ~14 ms here, where the save is ~2 ms) can be skipped. The
    rules are written as iptables-save prints them; one printed otherwise only costs the
    restore this saves."""
    current: dict[str, list[str]] = {c: [] for c in ours & _existing_chains(saved)}
    for line in saved.splitlines():
        chain, _, rule = line[3:].partition(" ")
        if line.startswith("-A ") and chain in current:
            current[chain].append(rule)
    return current == chains and sorted(_builtin_jumps(saved, ours)) == sorted(jumps)


def restore_payload(table: str, saved: str, chains: dict[str, list[str]],
                    jumps: list[tuple[str, str]], ours: set[str]) -> str:
    """The iptables-restore --noflush text that turns `saved` (iptables-save -t table) into
    the desired state. With no chains and jumps it removes ours."""
    out = [f"*{table}"]
    existing = _existing_chains(saved)
    for chain in chains:
        out.append(f":{chain} - [0:0]")   # declares or flushes
    current = _builtin_jumps(saved, ours)
    # drop stale or doubled jumps, keep exactly one of each wanted one
    kept: set[tuple[str, str]] = set()
    for chain, rule in current:
        if (chain, rule) in jumps and (chain, rule) not in kept:
            kept.add((chain, rule))
        else:
            out.append(f"-D {chain} {rule}")
    for chain, rules in chains.items():
        out.extend(f"-A {chain} {r}" for r in rules)
    for chain, rule in jumps:
        if (chain, rule) not in kept:
            out.append(f"-I {chain} 1 {rule}")
    for chain in sorted(ours & existing - set(chains)):
        out.append(f"-F {chain}")
        out.append(f"-X {chain}")
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def _run(args: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BerthError(f"{' '.join(args[:3])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _save(table: str, version: int = 4) -> str:
    return _run([TOOLS[version][0], "-t", table])


def _install(prefix: str, rs: Ruleset, version: int) -> None:
    """Make the host's chains of `prefix` for one IP version what `rs` says; an empty `rs`
    removes them (and costs no restore when there is nothing of ours to remove)."""
    names = chain_names(prefix)
    for table in TABLES:
        try:
            saved = _save(table, version)
        except FileNotFoundError:   # a host without ip6tables runs IPv4-only networks
            if any(rs.chains.values()) or any(rs.jumps.values()):
                raise BerthError(f"{TOOLS[version][0]} is not installed: IPv{version} networks need it") from None
            return
        ours = set(names[table])
        chains, jumps = rs.chains[table], rs.jumps[table]
        if _in_place(saved, chains, jumps, ours):
            continue
        _run([TOOLS[version][1], "-w", "--noflush"], restore_payload(table, saved, chains, jumps, ours))


def apply(prefix: str, networks: list[NetworkRule], ports: list[PortRule],
          versions: Iterable[int] = (4, 6)) -> None:
    """Make the host's rules for `prefix` exactly what `networks` and `ports` call for, in the
    IP versions given (a caller that knows the IPv6 chains are absent and not wanted may
    skip version 6)."""
    for version in versions:
        _install(prefix, build(prefix, networks, ports, version), version)


def remove_all(prefix: str) -> None:
    """Delete berth's jump rules and chains for `prefix`, IPv4 and IPv6; touch nothing else."""
    for version in TOOLS:
        _install(prefix, empty_ruleset(), version)


def current_rules(prefix: str, version: int = 4) -> list[str]:
    """Every line of (ip6)iptables-save mentioning our chains (for tests and diagnostics)."""
    p = prefix.upper() + "-"
    lines = []
    for table in TABLES:
        lines.extend(ln for ln in _save(table, version).splitlines() if p in ln)
    return lines
