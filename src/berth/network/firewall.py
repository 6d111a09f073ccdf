"""berth's firewall rules, as data, applied by one function.

Every rule lives in berth's own iptables chains, named from the firewall prefix
(upper-cased): `P-FORWARD` and `P-ISOLATION` (filter), `P-DNAT` and `P-POSTROUTING` (nat).
The only touch of the built-in chains is one jump rule each. `apply()` computes the whole
desired state from the networks and published ports and installs it with one
`iptables-restore --noflush` per table: our chains are re-declared (which flushes them),
refilled, jump rules inserted if missing and de-duplicated. Running it again is a no-op,
so it is also the reconciliation done at daemon start. `remove_all()` deletes the jumps
and our chains and nothing else.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from berth.errors import BerthError

SUFFIXES = {"filter": ("FORWARD", "ISOLATION"), "nat": ("DNAT", "POSTROUTING")}


@dataclass(frozen=True)
class NetworkRule:
    """What the firewall needs to know about one bridge network."""

    bridge: str
    subnet: str
    internal: bool = False


@dataclass(frozen=True)
class PortRule:
    """One published port: host side -> container side on a bridge."""

    proto: str
    host_ip: str        # "" / "0.0.0.0" = every local address
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


@dataclass
class Ruleset:
    """The desired state: chains per table and the jumps into them from built-in chains."""

    chains: dict[str, dict[str, list[str]]] = field(default_factory=dict)   # table -> chain -> rules
    jumps: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # table -> [(builtin, rule)]


def chain_names(prefix: str) -> dict[str, list[str]]:
    p = prefix.upper()
    return {table: [f"{p}-{s}" for s in sfx] for table, sfx in SUFFIXES.items()}


def build(prefix: str, networks: list[NetworkRule], ports: list[PortRule]) -> Ruleset:
    p = prefix.upper()
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
                f_fwd.append(f"-d {pr.container_ip}/32 -o {b} -p {pr.proto} -m {pr.proto} "
                             f"--dport {pr.container_port} -j ACCEPT")
        f_fwd.append(f"-i {b} ! -o {b} -j ACCEPT")
        f_fwd.append(f"-i {b} -o {b} -j ACCEPT")
        n_post.append(f"-s {n.subnet} ! -o {b} -j MASQUERADE")
    for n in networks:
        # from 127.0.0.1 (DNAT in OUTPUT + route_localnet) and hairpin through a published port
        n_post.append(f"-o {n.bridge} -m addrtype --src-type LOCAL -j MASQUERADE")
        n_post.append(f"-s {n.subnet} -o {n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
    for pr in ports:
        if pr.bridge in internal:
            continue
        dst = f"-d {pr.host_ip}/32 " if pr.host_ip and pr.host_ip != "0.0.0.0" else ""
        n_dnat.append(f"{dst}-p {pr.proto} -m {pr.proto} --dport {pr.host_port} -j DNAT "
                      f"--to-destination {pr.container_ip}:{pr.container_port}")
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


def _save(table: str) -> str:
    return _run(["iptables-save", "-t", table])


def apply(prefix: str, networks: list[NetworkRule], ports: list[PortRule]) -> None:
    """Make the host's rules for `prefix` exactly what `networks` and `ports` call for."""
    rs = build(prefix, networks, ports)
    names = chain_names(prefix)
    for table in ("filter", "nat"):
        payload = restore_payload(table, _save(table), rs.chains[table], rs.jumps[table],
                                  set(names[table]))
        _run(["iptables-restore", "-w", "--noflush"], payload)


def remove_all(prefix: str) -> None:
    """Delete berth's jump rules and chains for `prefix`; touch nothing else."""
    names = chain_names(prefix)
    for table in ("filter", "nat"):
        saved = _save(table)
        ours = set(names[table])
        if not (ours & _existing_chains(saved)) and not _builtin_jumps(saved, ours):
            continue
        _run(["iptables-restore", "-w", "--noflush"], restore_payload(table, saved, {}, [], ours))


def current_rules(prefix: str) -> list[str]:
    """Every line of iptables-save mentioning our chains (for tests and diagnostics)."""
    p = prefix.upper() + "-"
    lines = []
    for table in ("filter", "nat"):
        lines.extend(ln for ln in _save(table).splitlines() if p in ln)
    return lines
