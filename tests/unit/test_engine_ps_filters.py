"""engine.containerjson's ps filters folded as dockerd's foldFilter (daemon/list.go), and the
network settings a stopped container keeps (dockerd's releaseNetwork)."""

from __future__ import annotations

import pytest

from berth.engine import containerjson
from berth.errors import InvalidParameter, NotFound


def _ids(ref: str) -> str:
    if ref == "gone":
        raise NotFound(f"No such container: {ref}")
    return "id-" + ref


def test_folding_parses_ports_exit_codes_and_references() -> None:
    pf = containerjson.fold_ps_filters({"publish": ["8000-8002/udp"], "expose": ["80"], "exited": ["3", "0"],
                                        "before": ["web"], "since": ["db"], "status": ["exited"]}, _ids)
    assert pf.publish == {"8000/udp", "8001/udp", "8002/udp"} and pf.expose == {"80/tcp"}
    assert pf.exited == {0, 3} and (pf.before, pf.since) == ("id-web", "id-db") and pf.all


@pytest.mark.parametrize("filters, says", [
    ({"colour": ["red"]}, "invalid filter 'colour'"),
    ({"status": ["sleeping"]}, "invalid filter 'status=sleeping'"),
    ({"exited": ["x"]}, "invalid filter 'exited=x'"),
    ({"health": ["sick"]}, "Unrecognised filter value for health: sick"),
    ({"is-task": ["maybe"]}, "invalid filter 'is-task=maybe'"),
    ({"publish": ["1:80"]}, "filter for 'publish' should not contain ':': 1:80"),
    ({"expose": ["90-80"]}, "error while looking up for expose 90-80"),
    ({"expose": ["70000"]}, "error while looking up for expose 70000"),
])
def test_bad_filters_are_refused_in_dockerds_words(filters: dict, says: str) -> None:
    with pytest.raises(InvalidParameter, match=says.replace("(", r"\(")):
        containerjson.fold_ps_filters(filters, _ids)


def test_an_unknown_before_container_is_not_found() -> None:
    with pytest.raises(NotFound):
        containerjson.fold_ps_filters({"before": ["gone"]}, _ids)


def test_released_settings_keep_ids_and_a_wanted_mac_only() -> None:
    ns = {"IPAddress": "10.0.0.2", "Gateway": "10.0.0.1", "MacAddress": "02:42:0a:00:00:02", "SandboxID": "sb",
          "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
          "_aliases": {"front": {"MacAddress": "02:00:00:00:00:aa"}},
          "Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "10.0.0.2", "EndpointID": "e1",
                                  "MacAddress": "02:42:0a:00:00:02", "Aliases": None},
                       "front": {"NetworkID": "n2", "IPAddress": "10.1.0.2", "EndpointID": "e2",
                                 "MacAddress": "02:00:00:00:00:aa", "Aliases": ["web"]}}}
    out = containerjson.released_network_settings(ns)
    assert out["Ports"] == {} and out["SandboxID"] == "sb" and out["IPAddress"] == "" and out["MacAddress"] == ""
    assert out["Networks"]["bridge"] == {"NetworkID": "n1", "IPAddress": "", "EndpointID": "", "MacAddress": "",
                                         "Aliases": None}
    assert out["Networks"]["front"]["MacAddress"] == "02:00:00:00:00:aa"
    assert out["Networks"]["front"]["Aliases"] == ["web"] and ns["Networks"]["bridge"]["IPAddress"] == "10.0.0.2"
