"""berth's CLI sends what the docker CLI sends: both run against a tiny capturing Engine API
on a unix socket, flag by flag; the request fields a flag changes in docker's body (against
docker's own body without it) must hold the same values in berth's. Values both CLIs refuse
before sending anything must be refused with the same words and exit status 125.

Needs a docker CLI of API 1.44 or later (docker 25+; no daemon, no root): berth speaks 1.45,
and older CLIs send an older API's fields (KernelMemory, capabilities as typed)."""

from __future__ import annotations

import json
import os
import shlex
import socketserver
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from support import venv_exe


def _modern(binary: str) -> bool:
    """docker 25 or later (`Docker version 28.2.2, build e6534b4`)."""
    if not os.access(binary, os.X_OK):
        return False
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    major = out.removeprefix("Docker version ").split(".")[0]
    return major.isdigit() and int(major) >= 25


DOCKER_BINARIES = [b for b in ("/usr/local/bin/docker", "/usr/bin/docker") if _modern(b)]
pytestmark = pytest.mark.skipif(not DOCKER_BINARIES, reason="no docker CLI of version 25 or later")

ANSWERS = {  # path suffix -> (status, JSON answer); anything else: 404
    "/_ping": (200, None),
    "/containers/create": (201, {"Id": "c0ffee" * 10 + "abcd", "Warnings": []}),
    "/update": (200, {"Warnings": []}),
    "/exec": (201, {"Id": "e" * 64}),
    "/start": (200, None),
    "/networks/create": (201, {"Id": "f" * 64}),
    "/volumes/create": (201, {"Name": "v", "Driver": "local", "Mountpoint": "/v", "Labels": {},
                              "Options": {}, "Scope": "local"}),
    "/build": (200, {"aux": {"ID": "sha256:" + "b" * 64}}),
    "/archive": (200, None),
}


class _Capture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            raw = b""
            while size := int(self.rfile.readline().strip(), 16):
                raw += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return raw
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _any(self) -> None:
        raw = self._body()
        path, _, query = self.path.partition("?")
        body = None
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)
        self.requests.append({"method": self.command, "path": path, "query": query, "body": body})
        status, answer = next((v for k, v in ANSWERS.items() if path.endswith(k)), (404, {"message": "no"}))
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for k, v in (("Content-Type", "application/json"), ("Api-Version", "1.45"), ("OSType", "linux"),
                     ("Content-Length", str(len(data)))):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _any


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def api(tmp_path_factory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("capture")
    sock = d / "api.sock"
    server = _Server(str(sock), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (d / "docker-config").mkdir()
    (d / "berth-config").mkdir()
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", BERTH_HOST=f"unix://{sock}",
               DOCKER_CONFIG=str(d / "docker-config"), BERTH_CONFIG=str(d / "berth-config"),
               DOCKER_CLI_HINTS="false", DOCKER_BUILDKIT="0")
    env.pop("BERTH_API_VERSION", None)
    try:
        yield env
    finally:
        server.shutdown()
        server.server_close()
        sock.unlink(missing_ok=True)


def send(env: dict, binary: str, argv: list[str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    _Capture.requests = []
    r = subprocess.run([binary, *argv], env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return r, [q for q in _Capture.requests if q["method"] in ("POST", "PUT")]


def flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def _zero(v: object) -> bool:
    return v in (None, "", 0, False, [], {})


def same(a: object, b: object) -> bool:
    """Equal as the daemon reads them: a missing field is its zero value."""
    return a == b or (_zero(a) and _zero(b))


def changed(before: dict, after: dict) -> dict[str, object]:
    return {k: after.get(k) for k in set(before) | set(after) if not same(before.get(k), after.get(k))}


def _docker_knowing(env: dict, verb: list[str], args: list[str], last: list[str]) -> tuple:
    """The first docker binary that does not call a flag of args unknown."""
    for binary in DOCKER_BINARIES:
        r, reqs = send(env, binary, [*verb, *args, *last])
        if "unknown flag" not in r.stderr and "unknown shorthand" not in r.stderr:
            return binary, r, reqs
    pytest.skip(f"no docker CLI here knows {args}")


def _decoded(values: list[str]) -> object:
    """A query parameter as the daemon reads it: one JSON object or list decoded (key order
    and spacing do not matter), repeated values as a list."""
    if len(values) != 1 or not values[0].startswith(("{", "[")):
        return values
    try:
        return json.loads(values[0])
    except ValueError:
        return values[0]


def compare(env: dict, verb: list[str], args: list[str], last: list[str], part: str = "body") -> None:
    binary, d, dreqs = _docker_knowing(env, verb, args, last)
    b, breqs = send(env, venv_exe("berth"), [*verb, *args, *last])
    assert d.returncode == 0, d.stderr
    assert b.returncode == 0, b.stderr
    _, dbase = send(env, binary, [*verb, *last])
    _, bbase = send(env, venv_exe("berth"), [*verb, *last])

    def fields(reqs: list[dict]) -> dict[str, object]:
        if not reqs:   # a command that needs a flag (update) sent nothing without one
            return {}
        q = reqs[0]
        if part == "query":
            from urllib.parse import parse_qs

            return {k: _decoded(v) for k, v in parse_qs(q["query"]).items()}
        return flat(q["body"])

    want = changed(fields(dbase), fields(dreqs))
    assert want, f"{args} changes nothing in docker's request"
    got = fields(breqs)
    wrong = {k: (v, got.get(k)) for k, v in want.items() if not same(v, got.get(k))}
    assert not wrong, f"{shlex.join(args)}: (docker, berth) {wrong}"


CREATE_CASES = [
    "--blkio-weight 300", "--blkio-weight 0x20", "--blkio-weight-device /dev/sda:200",
    "--blkio-weight-device /dev/sda:0", "--device-read-bps /dev/sda:1mb",
    "--device-read-bps /dev/sda:1.5mb", "--device-write-bps /dev/sda:1kb",
    "--device-read-iops /dev/sda:1000", "--device-write-iops /dev/sda:20",
    "--cpu-rt-period 1000", "--cpu-rt-runtime 950", "--device-cgroup-rule 'c 1:3 mr'",
    "--device-cgroup-rule 'a *:* rwm'", "--gpus all", "--gpus 2", "--gpus -1", "--gpus count=all",
    "--gpus driver=nvidia", "--gpus '\"device=0,2\",capabilities=compute'",
    "--gpus '\"capabilities=compute,utility\",count=1'", "--gpus '\"options=a=b,c\"'",
    "--gpus count=1,2", "--gpus all --gpus 1", "--gpus device=", "--health-start-interval 2s",
    "--health-cmd true --health-start-interval 1m30s", "--link-local-ip 169.254.1.1",
    "--network n --link-local-ip 169.254.1.1 --ip 10.0.0.2", "--ip 10.0.0.2", "--ip6 fd00::2",
    "--use-api-socket", "--rm", "-i", "-i -a stdout", "-a stderr", "--cap-add net_admin",
    "--cap-add ALL --cap-add chown --cap-drop b --cap-drop a --cap-drop B",
    "--security-opt no-new-privileges", "--security-opt seccomp=unconfined",
    "--security-opt label:disable", "--security-opt apparmor=unconfined --security-opt no-new-privileges=true",
"--ipc host", "--pid host", "--log-driver none",
    "--log-opt max-size=1m", "--volumes-from other:ro", "--init", "--runtime runc",
    "--annotation a=b", "--link other:alias", "--kernel-memory 10m -m 32m",
    "--ulimit nofile=-1", "--ulimit nofile=+5:10",
    "--network a --network b", "--network name=a,alias=x,ip=10.0.0.5 --network b",
    "--network name=a,mac-address=02:42:AC:11:00:02", "--network a --network-alias x --network b",
    "--network name=a,driver-opt=k=v,link-local-ip=169.254.1.1", "--network a --ip 10.1.0.3 --network b",
    "--network a --link other:al", "--network name=a,ip6=fd00::3,alias=p,alias=q",
]


@pytest.mark.parametrize("case", CREATE_CASES)
def test_create_sends_what_docker_sends(api, case: str) -> None:  # type: ignore[no-untyped-def]
    compare(api, ["create"], shlex.split(case), ["busybox"])


REFUSED = [
    "--blkio-weight 70000", "--blkio-weight x", "--blkio-weight -1",
    "--blkio-weight-device /dev/sda", "--blkio-weight-device sda:200",
    "--blkio-weight-device /dev/sda:x", "--blkio-weight-device /dev/sda:5",
    "--blkio-weight-device /dev/sda:1001", "--device-read-bps /dev/sda", "--device-read-bps sda:1mb",
    "--device-read-bps /dev/sda:x", "--device-write-bps /dev/sda:-1", "--device-read-iops /dev/sda:1k",
    "--device-write-iops /dev/sda:-3", "--device-write-iops :3", "--cpu-rt-period x",
    "--cpu-rt-runtime 1.5", "--gpus x", "--gpus count=x", "--gpus foo=1", "--gpus ''",
    "--gpus driver=a,count=1,driver=b", "--gpus 2,count=1", "--gpus '\"device=0,2\"x'",
    "--gpus '\"device=0,2\"\"'", "--gpus 'a\"b'", "--gpus 'options='", "--gpus 1.5",
    "--device-cgroup-rule x", "--device-cgroup-rule 'c 1:3 mrx'", "--health-start-interval x",
    "--kernel-memory x", "--security-opt foo", "--security-opt label=", "--security-opt seccomp=/no/such/file",
    "--network-alias a", "--network host --network-alias a", "--io-maxiops -1",
    "--io-maxbandwidth x", "--cpu-count x", "--ulimit foo=1", "--ulimit nofile=0x10",
    "--rm --restart always",
    "--network a --network a", "--network host --network a", "--network name=a,alias=x --network-alias y",
    "--network name=a,foo=1", "--network alias=x", "--network name=a,ip=10.0.0.1 --ip 10.0.0.2",
    "--network bridge --network a",
]

WINDOWS_ONLY = ["--cpu-count 2", "--cpu-percent 50", "--io-maxbandwidth 1m", "--io-maxiops 300"]


@pytest.mark.parametrize("case", REFUSED)
def test_refused_as_docker_refuses(api, case: str) -> None:  # type: ignore[no-untyped-def]
    args = shlex.split(case)
    _, d, dreqs = _docker_knowing(api, ["create"], args, ["busybox"])
    b, breqs = send(api, venv_exe("berth"), ["create", *args, "busybox"])
    assert d.returncode == 125 and not dreqs, d.stderr
    assert b.returncode == 125 and not breqs, b.stderr
    first = d.stderr.strip().splitlines()[0].removeprefix("docker: ")
    assert b.stderr.strip().splitlines()[0].removeprefix("berth: ") == first


@pytest.mark.parametrize("case", WINDOWS_ONLY)
def test_windows_only_flags_refused_as_docker_refuses(api, case: str) -> None:  # type: ignore[no-untyped-def]
    """Parsed, then refused (exit 1) because the daemon is not a Windows one."""
    argv = ["create", *shlex.split(case), "busybox"]
    d, dreqs = send(api, DOCKER_BINARIES[0], argv)
    b, breqs = send(api, venv_exe("berth"), argv)
    assert d.returncode == b.returncode == 1 and not dreqs and not breqs, b.stderr
    assert b.stderr.strip().removeprefix("berth: ") == d.stderr.strip()


def test_use_api_socket_hands_stored_credentials_over(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With stored credentials, --use-api-socket points DOCKER_CONFIG at a config.json that
    the CLI copies into the new container, as docker's does."""
    (tmp_path / "config.json").write_text('{"auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}}}')
    env = dict(api, BERTH_CONFIG=str(tmp_path))
    r, reqs = send(env, venv_exe("berth"), ["create", "--use-api-socket", "busybox"])
    assert r.returncode == 0, r.stderr
    create, put = reqs
    assert "DOCKER_CONFIG=/run/secrets/docker" in create["body"]["Env"]
    assert put["path"].endswith("/archive") and "path=%2F" in put["query"]


def test_create_help_lists_the_new_flags() -> None:
    out = subprocess.run([venv_exe("berth"), "create", "--help"], capture_output=True, text=True).stdout
    for flag in ("--blkio-weight uint16", "--gpus", "--device-cgroup-rule", "--rm", "--use-api-socket"):
        assert flag in out


UPDATE_CASES = [
    "--blkio-weight 300", "--cpu-period 1000 --cpu-quota 500", "--cpu-rt-period 1000 --cpu-rt-runtime 900",
    "--cpuset-mems 0", "--cpuset-cpus 0-1", "--memory-reservation 10m", "--kernel-memory 10m -m 32m",
    "-c 512", "--cpus 1.5", "--memory-swap -1 -m 32m", "--pids-limit -1", "--restart on-failure:2",
]


@pytest.mark.parametrize("case", UPDATE_CASES)
def test_update_sends_what_docker_sends(api, case: str) -> None:  # type: ignore[no-untyped-def]
    compare(api, ["update"], shlex.split(case), ["ctr"])


def test_seccomp_profile_file_is_sent_as_its_json(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "profile.json"
    profile.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]\n}\n')
    compare(api, ["create"], ["--security-opt", f"seccomp={profile}"], ["busybox"])
    compare(api, ["create"], ["--security-opt", f"seccomp:{profile}"], ["busybox"])


def test_systempaths_unconfined_unmasks_every_path(api) -> None:  # type: ignore[no-untyped-def]
    """`systempaths=unconfined` is not sent as an option: MaskedPaths and ReadonlyPaths go
    as empty lists (not null: null would mean the default paths)."""
    for binary in (DOCKER_BINARIES[0], venv_exe("berth")):
        r, reqs = send(api, binary, ["create", "--security-opt", "systempaths=unconfined", "busybox"])
        assert r.returncode == 0, r.stderr
        hc = reqs[0]["body"]["HostConfig"]
        assert hc["MaskedPaths"] == [] and hc["ReadonlyPaths"] == [] and not hc["SecurityOpt"], binary


# not --disable-content-trust=false: docker then asks notary.docker.io (berth accepts and ignores it)
BUILD_CASES = [
    "--cpu-period 1000", "--cpu-quota 500", "--cpuset-cpus 0-1", "--cpuset-mems 0", "-m 512m",
    "--memory-swap 1g", "--memory-swap -1", "--security-opt seccomp=unconfined",
    "--security-opt a,b --security-opt c", "--isolation hyperv", "--shm-size 64m", "-c 512",
    "--cache-from a,b --cache-from c", "--rm=false", "--force-rm", "--no-cache", "--pull", "-q",
    "--label a=b --label c", "--network host", "--ulimit nofile=10:20", "--add-host a:1.2.3.4",
    "--add-host a=1.2.3.4 --add-host b:host-gateway", "--cgroup-parent p", "--target t",
    "--platform linux/amd64", "--build-arg A=b --build-arg HOME --build-arg NO_SUCH_VAR_X",
    "-t a -t b:1", "-f {dir}/Dockerfile.other",
]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("build")
    (d / "Dockerfile").write_text("FROM busybox\n")
    (d / "Dockerfile.other").write_text("FROM busybox\n")
    return str(d)


@pytest.mark.parametrize("case", BUILD_CASES)
def test_build_sends_what_docker_sends(api, build_dir, case: str) -> None:  # type: ignore[no-untyped-def]
    args = shlex.split(case.format(dir=build_dir))
    compare(dict(api, HOME="/root"), ["build"], args, [build_dir], part="query")


BUILD_REFUSED = [
    "-m x", "--memory-swap x", "--shm-size x", "--ulimit x", "--ulimit nofile=a", "--add-host x",
    "--ulimit foo=1", "--ulimit nofile=1:2:3", "--ulimit nofile=5:3",
    "--cpu-period x", "--cpu-quota 1.5", "--label =x", "--build-arg =x", "-t BAD", "-t ok/Bad:tag",
    "-t 'a b'", "--disable-content-trust=x", "--squash",
]


@pytest.mark.parametrize("case", BUILD_REFUSED)
def test_build_refused_as_docker_refuses(api, build_dir, case: str) -> None:  # type: ignore[no-untyped-def]
    args = shlex.split(case)
    _, d, dreqs = _docker_knowing(api, ["build"], args, [build_dir])
    b, breqs = send(api, venv_exe("berth"), ["build", *args, build_dir])
    assert d.returncode in (1, 125) and not any(q["path"].endswith("/build") for q in dreqs), d.stderr
    assert b.returncode == d.returncode and not breqs, b.stderr
    first = next(ln for ln in d.stderr.strip().splitlines() if "flag" in ln or "squash" in ln)
    assert b.stderr.strip().splitlines()[0].removeprefix("berth: ") == first.removeprefix("docker: ")


NETWORK_CASES = [
    "--ipv4", "--ipv6", "--subnet 10.0.0.0/24 --ip-range 10.0.0.128/25 --aux-address a=10.0.0.5",
    "-o com.docker.network.bridge.name=b0 -o x", "--ipam-opt a=b", "--internal", "--attachable",
    "--label a=b", "-d macvlan", "--scope local", "--ipam-driver other", "--subnet nonsense",
]


@pytest.mark.parametrize("case", NETWORK_CASES)
def test_network_create_sends_what_docker_sends(api, case: str) -> None:  # type: ignore[no-untyped-def]
    compare(api, ["network", "create"], shlex.split(case), ["n"])


@pytest.mark.parametrize("case", ["", "--ipv4=false", "--ipv6=false", "--ipv4=false --ipv6",
                                  "--subnet 10.0.0.0/24,10.1.0.0/24 --gateway 10.0.0.1,10.1.0.1"])
def test_network_create_ip_families_and_subnets(api, case: str) -> None:  # type: ignore[no-untyped-def]
    """EnableIPv4/EnableIPv6 go only when given (false is not the same as unset); docker
    sends IPAM.Config in its map's random order, compared here sorted."""
    bodies = []
    for binary in (DOCKER_BINARIES[0], venv_exe("berth")):
        r, reqs = send(api, binary, ["network", "create", *shlex.split(case), "n"])
        assert r.returncode == 0, r.stderr
        body = reqs[0]["body"]
        bodies.append((body.get("EnableIPv4"), body.get("EnableIPv6"),
                       sorted(body["IPAM"]["Config"], key=lambda c: c["Subnet"])))
    assert bodies[0] == bodies[1]


def test_network_connect_splits_list_flags_at_commas(api) -> None:  # type: ignore[no-untyped-def]
    for binary in (DOCKER_BINARIES[0], venv_exe("berth")):
        send(api, binary, ["network", "connect", "--alias", "a,b", "--driver-opt", "x=1,y=2", "n", "c"])
        ep = _Capture.requests[-1]["body"]["EndpointConfig"]
        assert ep["Aliases"] == ["a", "b"] and ep["DriverOpts"] == {"x": "1", "y": "2"}, binary


COMMAND_REFUSED = [  # (command words, arguments): refused before any request, in docker's words
    ("network create", "--gateway 10.0.0.1 n"), ("network create", "--subnet 10.0.0.0/24 --gateway 10.1.0.1 n"),
    ("network create", "--subnet 10.0.0.0/16 --subnet 10.0.1.0/24 n"), ("network create", "--aux-address a n"),
    ("network create", "--subnet 10.0.0.0/24 --gateway 10.0.0.1 --gateway 10.0.0.2 n"),
    ("network create", "--subnet 10.0.0.0/24 --gateway x n"), ("volume create", "--name a b"),
    ("volume create", "--name a a"),
    ("ps", "--filter foo"), ("images", "-f foo"), ("volume ls", "-f x"), ("network ls", "--filter y"),
    ("container prune", "--filter z -f"), ("image prune", "--filter a"),
]


@pytest.mark.parametrize("words, case", COMMAND_REFUSED)
def test_command_refused_as_docker_refuses(api, words: str, case: str) -> None:  # type: ignore[no-untyped-def]
    argv = [*words.split(), *shlex.split(case)]
    d, dreqs = send(api, DOCKER_BINARIES[0], argv)
    b, breqs = send(api, venv_exe("berth"), argv)
    assert d.returncode != 0 and not dreqs, d.stderr
    assert b.returncode == d.returncode and not breqs, b.stderr
    assert b.stderr.strip().splitlines()[0].removeprefix("berth: ") == d.stderr.strip().splitlines()[0]


@pytest.mark.parametrize("argv", [["volume", "create", "--name", "a"], ["volume", "create", "a"]])
def test_volume_create_name_as_flag_or_argument(api, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    bodies = [send(api, binary, argv)[1][0]["body"] for binary in (DOCKER_BINARIES[0], venv_exe("berth"))]
    assert bodies[0]["Name"] == bodies[1]["Name"] == "a"
