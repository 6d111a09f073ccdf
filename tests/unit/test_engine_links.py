"""Legacy links as the container record keeps them (berth.engine.links): by target ID, shown
with the names as they are now, and read back from records written before links by ID."""

from __future__ import annotations

import json
from typing import Any

from berth.engine import links
from berth.engine.container import Container, new_state
from berth.engine.links import Link


def _row(c: Container) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "image_id": c.image_id, "created": c.created,
            "hidden": int(c.hidden), "doc": c.doc()}


def _linker(*linked: Link) -> Container:
    return Container(id="l" * 64, name="web", image_id="sha256:x", created="2026-01-01T00:00:00Z",
                     config={}, host_config={"NetworkMode": "default"}, state=new_state(), links=list(linked))


def test_parse_and_env() -> None:
    assert links.parse("db") == ("db", "db")
    assert links.parse("db:my-al") == ("db", "my-al")
    assert links.parse("/db:/web/my-al") == ("db", "my-al")
    env = links.env("my-al", "/web/my-al", "10.0.0.2",
                    {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Env": ["PATH=/bin", "FOO=bar", "HOME=/r"]})
    assert env == ["MY_AL_PORT=udp://10.0.0.2:53",
                   "MY_AL_PORT_53_UDP=udp://10.0.0.2:53", "MY_AL_PORT_53_UDP_ADDR=10.0.0.2",
                   "MY_AL_PORT_53_UDP_PORT=53", "MY_AL_PORT_53_UDP_PROTO=udp",
                   "MY_AL_PORT_80_TCP=tcp://10.0.0.2:80", "MY_AL_PORT_80_TCP_ADDR=10.0.0.2",
                   "MY_AL_PORT_80_TCP_PORT=80", "MY_AL_PORT_80_TCP_PROTO=tcp",
                   "MY_AL_NAME=/web/my-al", "MY_AL_ENV_FOO=bar"]


def test_record_keeps_the_target_id_and_stores_it_for_the_network_service() -> None:
    c = _linker(Link("t" * 64, "db", "al"))
    doc = json.loads(c.doc())
    assert doc["links"] == [["t" * 64, "db", "al"]]
    # the network service's DNS reads the stored HostConfig.Links and matches container ids
    assert doc["host_config"]["Links"] == [f"/{'t' * 64}:/web/al"]
    back = Container.from_row(_row(c))
    assert back.links == c.links and "Links" not in back.host_config
    assert json.loads(_linker().doc())["host_config"]["Links"] is None


def test_record_from_before_links_by_id_keeps_the_names() -> None:
    doc = {"host_config": {"Links": ["/db:/web/al", "/cache:/web/cache"]}}
    assert links.from_record(doc) == [Link("", "db", "al"), Link("", "cache", "cache")]
    assert Link("", "db", "al").stored("web") == "/db:/web/al"   # until the service resolves the id


def test_renamed_changes_only_the_links_to_that_target() -> None:
    ours, other = Link("t" * 64, "db", "al"), Link("u" * 64, "cache", "c")
    assert links.renamed([ours, other], "t" * 64, "db2")
    assert (ours.shown("web"), other.shown("web")) == ("/db2:/web/al", "/cache:/web/c")
    assert not links.renamed([other], "t" * 64, "db3")
