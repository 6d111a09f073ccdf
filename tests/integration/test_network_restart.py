"""Live restore of the network side: a berthd of the test's own (own bridge, subnet,
firewall prefix) is killed and restarted while containers run. Published ports keep
working, names keep resolving on the user network, the host port stays reserved, the
firewall is reconciled (nothing doubled, nothing stale), and once every container and
network is gone and the daemon stopped, nothing of it is left on the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.network import firewall
from fixtures.daemon import private_daemon
from support import RunNames, free_port, host_state, http_get, private_names

pytestmark = [pytest.mark.root, pytest.mark.slow]

HTTPD = "mkdir -p /www && echo restored > /www/index.html && exec httpd -f -p 80 -h /www"


def test_daemon_restart_keeps_and_reconciles_networking(run_names: RunNames, busybox_tar: str) -> None:
    names = private_names(run_names, "rs")
    token = names.firewall_prefix   # also its bridge
    with private_daemon(names, busybox_tar) as d:
        port = free_port()

        def ok(*args: str) -> str:
            res = d.docker(*args)
            assert res.returncode == 0, (args, res.stdout, res.stderr, d.log_tail())
            return res.stdout

        ok("network", "create", "rs-net")
        ok("run", "-d", "--name", "rs-web", "--network", "rs-net", "-p", f"{port}:80", "busybox", "sh", "-c", HTTPD)
        assert http_get(f"http://127.0.0.1:{port}/") == "restored\n"
        rules = sorted(firewall.current_rules(token))
        assert any(f"--dport {port}" in ln for ln in rules)

        for how in ("stop", "kill -9"):
            if how == "kill -9":
                d.kill9()
            else:
                d.stop(timeout=90)
            assert sorted(firewall.current_rules(token)) == rules      # the plumbing stays
            d.start()
            assert sorted(firewall.current_rules(token)) == rules, how  # reconciled, not doubled
            assert http_get(f"http://127.0.0.1:{port}/") == "restored\n"
            out = ok("run", "--rm", "--network", "rs-net", "busybox", "sh", "-c",
                     "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://rs-web/ && exit 0; sleep 0.3; done; exit 1")
            assert out == "restored\n", how
            res = d.docker("run", "-d", "--name", "rs-thief", "-p", f"{port}:80", "busybox", "true")
            assert res.returncode != 0 and "port is already allocated" in res.stderr, (how, res.stderr)
            d.docker("rm", "-f", "rs-thief")
        info = json.loads(ok("network", "inspect", "rs-net"))[0]
        assert len(info["Containers"]) == 1

        ok("rm", "-f", "rs-web")
        ok("network", "rm", "rs-net")
        assert not any("--to-destination" in ln for ln in firewall.current_rules(token))
        d.stop(timeout=90)   # graceful: the network service removes its bridge and rules
        left = host_state(token)
        assert (left.links, left.firewall) == ([], []), (left, d.log_tail(30))
        assert [ln for ln in Path("/proc/mounts").read_text().splitlines() if str(names.exec_root / "netns") in ln] == []
