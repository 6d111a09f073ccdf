"""Pure helpers behind network/volume/search/df commands."""

from __future__ import annotations

import pytest

from berth.cli.client import CLIError
from berth.cli.commands.networks import ipam_config
from berth.cli.commands.registry import search_rows
from berth.cli.commands.system import df_rows


def test_ipam_pairs_gateways_and_ranges_with_their_subnets() -> None:
    cfg = ipam_config(["10.9.0.0/16", "10.10.0.0/24"], ["10.10.0.254", "10.9.0.1"], ["10.9.1.0/24"],
                      ["host1=10.9.0.5"])
    assert cfg == [{"Subnet": "10.9.0.0/16", "Gateway": "10.9.0.1", "IPRange": "10.9.1.0/24",
                    "AuxiliaryAddresses": {"host1": "10.9.0.5"}},
                   {"Subnet": "10.10.0.0/24", "Gateway": "10.10.0.254"}]
    assert ipam_config([], [], [], []) == []


@pytest.mark.parametrize("subnets, gateways, message", [
    ([], ["10.0.0.1"], "must have a corresponding subnet"),
    (["10.0.0.0/24"], ["10.1.0.1"], "no matching subnet for gateway"),
    (["10.0.0.0/16", "10.0.1.0/24"], [], "overlapping"),
    (["nonsense"], ["10.0.0.1"], "invalid subnet: invalid CIDR"),
    (["10.0.0.0/24"], ["10.0.0.1", "10.0.0.2"], "must have a corresponding subnet"),
    (["10.0.0.0/24", "10.1.0.0/24"], ["10.0.0.1", "10.0.0.2"], "multiple gateways"),
    (["10.0.0.0/24"], ["x"], "no matching subnet for gateway x"),
])
def test_ipam_errors(subnets: list[str], gateways: list[str], message: str) -> None:
    with pytest.raises(CLIError, match=message):
        ipam_config(subnets, gateways, [], [])


def test_ipam_leaves_a_lone_malformed_subnet_to_the_daemon() -> None:
    assert ipam_config(["nonsense"], [], [], []) == [{"Subnet": "nonsense"}]


def test_search_rows() -> None:
    rows = search_rows([{"name": "nginx", "description": "Official build of Nginx, a web server with a long description",
                         "star_count": 20000, "is_official": True, "is_automated": False}], trunc=True)
    assert rows == [{"Name": "nginx", "Description": "Official build of Nginx, a web server with a\u2026",
                     "StarCount": "20000", "IsOfficial": "[OK]", "IsAutomated": ""}]


def test_df_rows() -> None:
    d = {"LayersSize": 3000,
         "Images": [{"Id": "a", "Size": 2000, "SharedSize": 0, "Containers": 1},
                    {"Id": "b", "Size": 1000, "SharedSize": 0, "Containers": 0}],
         "Containers": [{"State": "running", "SizeRw": 10}, {"State": "exited", "SizeRw": 30}],
         "Volumes": [{"UsageData": {"Size": 500, "RefCount": 0}}],
         "BuildCache": [{"Size": 7, "InUse": False, "Shared": False}]}
    rows = {r["Type"]: r for r in df_rows(d)}
    assert rows["Images"]["Active"] == 1 and rows["Images"]["Size"] == "3kB"
    assert rows["Images"]["Reclaimable"] == "1kB (33%)"
    assert rows["Containers"]["Reclaimable"] == "30B (75%)"
    assert rows["Local Volumes"]["Reclaimable"] == "500B (100%)"
    assert rows["Build Cache"]["Reclaimable"] == "7B"
