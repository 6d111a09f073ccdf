"""`run`/`create` flags -> the Engine API ContainerCreate body, as the docker CLI builds it (pure).

The flag table is here; each flag's value is parsed by `berth.cli.flagvalues`."""

from __future__ import annotations

from berth.cli.flags import (
    BOOL,
    FLOAT,
    INT,
    LIST,
    STR,
    UINT,
    UINT16,
    Flag,
    Parsed,
    UsageError,
)
from berth.cli.flagvalues import (
    duration_ns,
    env_list,
    labels,
    normalized_caps,
    parse_add_host,
    parse_bps_device,
    parse_device,
    parse_device_cgroup_rule,
    parse_env_file,
    parse_expose,
    parse_gpus,
    parse_iops_device,
    parse_mount,
    parse_network,
    parse_publish,
    parse_restart,
    parse_security_opts,
    parse_ulimit,
    parse_volume,
    parse_weight_device,
    ram_in_bytes,
    swap_in_bytes,
)

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

CONTAINER_FLAGS: list[Flag] = [
    Flag("add-host", LIST, help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("annotation", LIST, shows="map", help="Add an annotation to the container"),
    Flag("attach", LIST, "a", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("blkio-weight", UINT16, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    Flag("blkio-weight-device", LIST, help="Block IO weight (relative device weight)"),
    Flag("cap-add", LIST, help="Add Linux capabilities"),
    Flag("cap-drop", LIST, help="Drop Linux capabilities"),
    Flag("cgroup-parent", STR, help="Optional parent cgroup for the container"),
    Flag("cgroupns", STR, help="Cgroup namespace to use (host|private)"),
    Flag("cidfile", STR, help="Write the container ID to the file"),
    Flag("cpu-count", INT, help="CPU count (Windows only)"),
    Flag("cpu-percent", INT, help="CPU percent (Windows only)"),
    Flag("cpu-period", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", INT, help="Limit CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", INT, help="Limit CPU real-time runtime in microseconds"),
    Flag("cpu-shares", INT, "c", help="CPU shares (relative weight)"),
    Flag("cpus", FLOAT, help="Number of CPUs"),
    Flag("cpuset-cpus", STR, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", STR, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("device", LIST, help="Add a host device to the container"),
    Flag("device-cgroup-rule", LIST, help="Add a rule to the cgroup allowed devices list"),
    Flag("device-read-bps", LIST, help="Limit read rate (bytes per second) from a device"),
    Flag("device-read-iops", LIST, help="Limit read rate (IO per second) from a device"),
    Flag("device-write-bps", LIST, help="Limit write rate (bytes per second) to a device"),
    Flag("device-write-iops", LIST, help="Limit write rate (IO per second) to a device"),
    # content trust (notary) is not implemented by berth; docker's own default is true
    Flag("disable-content-trust", BOOL, default=True, help="Skip image verification"),
    Flag("dns", LIST, help="Set custom DNS servers"),
    Flag("dns-option", LIST, help="Set DNS options"),
    Flag("dns-search", LIST, help="Set custom DNS search domains"),
    Flag("domainname", STR, help="Container NIS domain name"),
    Flag("entrypoint", STR, help="Overwrite the default ENTRYPOINT of the image"),
    Flag("env", LIST, "e", help="Set environment variables"),
    Flag("env-file", LIST, help="Read in a file of environment variables"),
    Flag("expose", LIST, help="Expose a port or a range of ports"),
    Flag("gpus", LIST, shows="gpu-request", help="GPU devices to add to the container ('all' to pass all GPUs)"),
    Flag("group-add", LIST, help="Add additional groups to join"),
    Flag("health-cmd", STR, help="Command to run to check health"),
    Flag("health-interval", STR, shows="duration", help="Time between running the check (ms|s|m|h)"),
    Flag("health-retries", INT, help="Consecutive failures needed to report unhealthy"),
    Flag("health-start-interval", STR, shows="duration", help="Time between running the check during the start period (ms|s|m|h)"),
    Flag("health-start-period", STR, shows="duration", help="Start period for the container to initialize"),
    Flag("health-timeout", STR, shows="duration", help="Maximum time to allow one check to run (ms|s|m|h)"),
    Flag("hostname", STR, "h", help="Container host name"),
    Flag("init", BOOL, help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", BOOL, "i", help="Keep STDIN open even if not attached"),
    Flag("io-maxbandwidth", STR, shows="bytes", help="Maximum IO bandwidth limit for the system drive (Windows only)"),
    Flag("io-maxiops", UINT, help="Maximum IOps limit for the system drive (Windows only)"),
    Flag("ip", STR, help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", STR, help="IPv6 address"),
    Flag("ipc", STR, help="IPC mode to use"),
    Flag("isolation", STR, help="Container isolation technology"),
    # validated as docker does, then not sent: API 1.42 and later have no kernel memory limit
    Flag("kernel-memory", STR, shows="bytes", help="Kernel memory limit"),
    Flag("label", LIST, "l", help="Set meta data on a container"),
    Flag("label-file", LIST, help="Read in a line delimited file of labels"),
    Flag("link", LIST, help="Add link to another container"),
    Flag("link-local-ip", LIST, help="Container IPv4/IPv6 link-local addresses"),
    Flag("log-driver", STR, help="Logging driver for the container"),
    Flag("log-opt", LIST, help="Log driver options"),
    Flag("mac-address", STR, help="Container MAC address"),
    Flag("memory", STR, "m", shows="bytes", help="Memory limit"),
    Flag("memory-reservation", STR, shows="bytes", help="Memory soft limit"),
    Flag("memory-swap", STR, shows="bytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    Flag("memory-swappiness", INT, default=-1, help="Tune container memory swappiness (0 to 100)"),
    Flag("mount", LIST, shows="mount", help="Attach a filesystem mount to the container"),
    Flag("name", STR, help="Assign a name to the container"),
    Flag("network", LIST, shows="network", help="Connect a container to a network"),
    Flag("net", LIST, hidden=True),
    Flag("network-alias", LIST, help="Add network-scoped alias for the container"),
    Flag("net-alias", LIST, hidden=True),
    Flag("no-healthcheck", BOOL, help="Disable any container-specified HEALTHCHECK"),
    Flag("oom-kill-disable", BOOL, help="Disable OOM Killer"),
    Flag("oom-score-adj", INT, help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("pid", STR, help="PID namespace to use"),
    Flag("pids-limit", INT, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("platform", STR, help="Set platform if server is multi-platform capable"),
    Flag("privileged", BOOL, help="Give extended privileges to this container"),
    Flag("publish", LIST, "p", help="Publish a container's port(s) to the host"),
    Flag("publish-all", BOOL, "P", help="Publish all exposed ports to random ports"),
    Flag("pull", STR, default="missing", help='Pull image before running ("always", "missing", "never")'),
    Flag("quiet", BOOL, "q", help="Suppress the pull output"),
    Flag("read-only", BOOL, help="Mount the container's root filesystem as read only"),
    Flag("restart", STR, default="no", help="Restart policy to apply when a container exits"),
    Flag("rm", BOOL, help="Automatically remove the container and its associated anonymous volumes when it exits"),
    Flag("runtime", STR, help="Runtime to use for this container"),
    Flag("security-opt", LIST, help="Security Options"),
    Flag("shm-size", STR, shows="bytes", help="Size of /dev/shm"),
    Flag("stop-signal", STR, help="Signal to stop the container"),
    Flag("stop-timeout", INT, help="Timeout (in seconds) to stop a container"),
    Flag("storage-opt", LIST, help="Storage driver options for the container"),
    Flag("sysctl", LIST, shows="map", help="Sysctl options"),
    Flag("tmpfs", LIST, help="Mount a tmpfs directory"),
    Flag("tty", BOOL, "t", help="Allocate a pseudo-TTY"),
    Flag("ulimit", LIST, shows="ulimit", help="Ulimit options"),
    Flag("use-api-socket", BOOL, help="Bind mount Docker API socket and required auth"),
    Flag("user", STR, "u", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("userns", STR, help="User namespace to use"),
    Flag("uts", STR, help="UTS namespace to use"),
    Flag("volume", LIST, "v", help="Bind mount a volume"),
    Flag("volume-driver", STR, help="Optional volume driver for the container"),
    Flag("volumes-from", LIST, help="Mount volumes from the specified container(s)"),
    Flag("workdir", STR, "w", help="Working directory inside the container"),
]

RUN_ONLY_FLAGS: list[Flag] = [
    Flag("detach", BOOL, "d", help="Run container in background and print container ID"),
    Flag("detach-keys", STR, help="Override the key sequence for detaching a container"),
    Flag("sig-proxy", BOOL, default=True, help="Proxy received signals to the process"),
]




def refuse_windows_only(o: Parsed) -> None:
    """Windows-only resources, refused as the docker CLI refuses them on a Linux daemon
    (berth's always is one), with exit status 1 even under `run`."""
    from berth.cli.client import CLIError

    if o.io_maxbandwidth:   # a malformed size is refused first, as pflag does (exit 125)
        ram_in_bytes(o.io_maxbandwidth, "--io-maxbandwidth")
    for flag in ("cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops"):
        if flag.replace("-", "_") in o.given:
            raise CLIError(f'"--{flag}" is only supported on a Docker daemon running on windows, '
                           "but the Docker daemon is running on linux")




def _user_defined(network: str) -> bool:
    return network not in ("", "default", "bridge", "host", "none") and not network.startswith("container:")


def network_endpoints(attachments: list[dict[str, Any]], o: Parsed) -> dict[str, Any]:
    """EndpointsConfig as the docker CLI makes it: one entry per --network (the first gets
    --network-alias, --ip, --ip6, --mac-address, --link-local-ip, and --link on a
    user-defined network), `default` when there is no --network and those flags are given;
    a single --network without settings gets none (the daemon makes its endpoint)."""
    aliases = o.network_alias + o.net_alias
    legacy = {"Aliases": aliases, "IPv4Address": o.ip or "", "IPv6Address": o.ip6 or "",
              "MacAddress": o.mac_address or "", "LinkLocalIPs": list(o.link_local_ip)}
    if not attachments:
        attachments = [{"Target": "default"}] if any(legacy.values()) else []
    conflicts = (("Aliases", "--network-alias and per-network alias"), ("IPv4Address", "--ip and per-network IPv4 address"),
                 ("IPv6Address", "--ip6 and per-network IPv6 address"),
                 ("MacAddress", "--mac-address and per-network MAC address"),
                 ("LinkLocalIPs", "--link-local-ip and per-network link-local IP addresses"))
    endpoints: dict[str, Any] = {}
    kinds = set()
    for i, att in enumerate(attachments):
        att = dict(att)
        target = att["Target"]
        kinds.add(_user_defined(target))
        if i == 0:
            for key, words in conflicts:
                if att.get(key) and legacy[key]:
                    raise UsageError(f"conflicting options: cannot specify both {words}")
                if legacy[key]:
                    att[key] = legacy[key]
            if o.link and _user_defined(target):
                att["Links"] = list(o.link)
        ep: dict[str, Any] = {}
        for key in ("Aliases", "Links", "DriverOpts", "MacAddress", "GwPriority"):
            if att.get(key):
                ep[key] = att[key]
        ipam = {k: att[k] for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs") if att.get(k)}
        if ipam:
            ep["IPAMConfig"] = ipam
        if target in endpoints:
            raise UsageError(f'network "{target}" is specified multiple times')
        if i == 0 and len(attachments) == 1 and not ep and target != "default":
            continue   # docker leaves a lone network without settings to the daemon
        endpoints[target] = ep
    if len(kinds) > 1:
        raise UsageError("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return endpoints


def create_body(o: Parsed, image: str, cmd: list[str], detach: bool = False) -> dict[str, Any]:
    """The ContainerCreate JSON for these parsed run/create flags."""
    if o.memory_swappiness is not None and o.memory_swappiness != -1 and not 0 <= o.memory_swappiness <= 100:
        raise UsageError(f"invalid value: {o.memory_swappiness}. Valid memory swappiness range is 0-100")
    env: list[str] = []
    for path in o.env_file:
        env += parse_env_file(path)
    env += env_list(o.env)

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in o.publish:
        for b in parse_publish(spec):
            exposed[b.container_port] = {}
            bindings.setdefault(b.container_port, []).append({"HostIp": b.host_ip, "HostPort": b.host_port})
    for spec in o.expose:
        for p in parse_expose(spec):
            exposed.setdefault(p, {})

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in o.volume:
        bind, anon = parse_volume(spec)
        if bind:
            binds.append(bind)
        else:
            volumes[anon] = {}
    tmpfs: dict[str, str] = {}
    for spec in o.tmpfs:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise UsageError(f"invalid tmpfs specification '{spec}': mount path must be absolute")
        tmpfs[path] = opts

    memory = ram_in_bytes(o.memory) if o.memory else 0
    swap = 0
    if o.memory_swap:
        swap = swap_in_bytes(o.memory_swap)
    if memory and memory < 6 * 1024 * 1024:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory and swap < memory:
        raise UsageError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if o.cpus is not None and o.cpus < 0:
        raise UsageError(f'invalid argument "{o.cpus}" for "--cpus" flag: must be a non-negative number')
    if o.cpus is not None and (o.cpu_period or o.cpu_quota):
        raise UsageError("Conflicting options: Nano CPUs and CPU Period cannot both be set")

    restart = parse_restart(o.restart or "no")
    # --rm: the daemon removes the container when it exits (AutoRemove); in the foreground
    # the CLI registers a `wait?condition=removed` before start to read the exit status.
    autoremove = bool(o.opts.get("rm"))
    if o.opts.get("rm") and restart["Name"] != "no":
        raise UsageError("conflicting options: cannot specify both --restart and --rm")

    attach = [a.lower() for a in o.attach]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise UsageError(f"invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
    if detach and attach:
        raise UsageError("conflicting options: cannot specify both --attach and --detach")
    if detach:
        a_in = a_out = a_err = False
    elif attach:
        # -i attaches stdin whatever -a says, as the docker CLI does
        a_in, a_out, a_err = "stdin" in attach or o.interactive, "stdout" in attach, "stderr" in attach
    else:
        a_in, a_out, a_err = o.interactive, True, True

    attachments = [parse_network(v) for v in o.network + o.net]
    network = attachments[0]["Target"] if attachments else ""
    aliases = o.network_alias + o.net_alias
    entrypoint: list[str] | None = None
    if o.entrypoint:
        entrypoint = [o.entrypoint]
    elif "entrypoint" in o.given:
        entrypoint = [""]

    healthcheck: dict[str, Any] | None = None
    health_set = (o.health_cmd or o.health_interval or o.health_timeout or o.health_retries
                  or o.health_start_period or o.health_start_interval)
    if o.no_healthcheck:
        if health_set:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        healthcheck = {"Test": ["NONE"]}
    elif health_set:
        healthcheck = {}
        if o.health_cmd:
            healthcheck["Test"] = ["CMD-SHELL", o.health_cmd]
        if o.health_interval:
            healthcheck["Interval"] = duration_ns(o.health_interval, "--health-interval")
        if o.health_timeout:
            healthcheck["Timeout"] = duration_ns(o.health_timeout, "--health-timeout")
        if o.health_start_period:
            healthcheck["StartPeriod"] = duration_ns(o.health_start_period, "--health-start-period")
        if o.health_retries:
            healthcheck["Retries"] = o.health_retries
        if o.health_start_interval:
            healthcheck["StartInterval"] = duration_ns(o.health_start_interval, "--health-start-interval")

    log_config: dict[str, Any] = {"Type": o.log_driver or "", "Config": {}}
    for opt in o.log_opt:
        k, _, v = opt.partition("=")
        log_config["Config"][k] = v
    sysctls = {}
    for s in o.sysctl:
        k, eq, v = s.partition("=")
        if not eq:
            raise UsageError(f'invalid argument "{s}" for "--sysctl" flag: sysctl \'{s}\' is not allowed')
        sysctls[k] = v
    storage_opt = {}
    for s in o.storage_opt:
        k, _, v = s.partition("=")
        storage_opt[k] = v

    security_opt, unmasked = parse_security_opts(o.security_opt)
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": o.cidfile or "",
        "LogConfig": log_config,
        "NetworkMode": network or "default",
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": autoremove,
        "VolumeDriver": o.volume_driver or "",
        "VolumesFrom": o.volumes_from or None,
        "CapAdd": normalized_caps(o.cap_add),
        "CapDrop": normalized_caps(o.cap_drop),
        "CgroupnsMode": o.cgroupns or "",
        "Dns": o.dns,
        "DnsOptions": o.dns_option,
        "DnsSearch": o.dns_search,
        "ExtraHosts": [parse_add_host(h) for h in o.add_host] or None,
        "GroupAdd": o.group_add or None,
        "IpcMode": o.ipc or "",
        "Links": o.link or None,
        "OomScoreAdj": o.oom_score_adj or 0,
        "PidMode": o.pid or "",
        "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": security_opt or None,
        "StorageOpt": storage_opt or None,
        "Tmpfs": tmpfs or None,
        "UTSMode": o.uts or "",
        "UsernsMode": o.userns or "",
        "ShmSize": ram_in_bytes(o.shm_size, "--shm-size") if o.shm_size else 0,
        "Sysctls": sysctls or None,
        "Runtime": o.runtime or "",
        "Isolation": o.isolation or "",
        "CpuShares": o.cpu_shares or 0,
        "Memory": memory,
        "NanoCpus": int(round(o.cpus * 1e9)) if o.cpus else 0,
        "CgroupParent": o.cgroup_parent or "",
        "CpuPeriod": o.cpu_period or 0,
        "CpuQuota": o.cpu_quota or 0,
        "CpuRealtimePeriod": o.cpu_rt_period or 0,
        "CpuRealtimeRuntime": o.cpu_rt_runtime or 0,
        "BlkioWeight": o.blkio_weight or 0,
        "BlkioWeightDevice": [parse_weight_device(d) for d in o.blkio_weight_device] or None,
        "BlkioDeviceReadBps": [parse_bps_device(d, "--device-read-bps") for d in o.device_read_bps] or None,
        "BlkioDeviceWriteBps": [parse_bps_device(d, "--device-write-bps") for d in o.device_write_bps] or None,
        "BlkioDeviceReadIOps": [parse_iops_device(d, "--device-read-iops") for d in o.device_read_iops] or None,
        "BlkioDeviceWriteIOps": [parse_iops_device(d, "--device-write-iops") for d in o.device_write_iops] or None,
        "DeviceCgroupRules": [parse_device_cgroup_rule(r) for r in o.device_cgroup_rule] or None,
        "DeviceRequests": [parse_gpus(g) for g in o.gpus] or None,
        "CpusetCpus": o.cpuset_cpus or "",
        "CpusetMems": o.cpuset_mems or "",
        "Devices": [parse_device(d) for d in o.device],
        "MemoryReservation": ram_in_bytes(o.memory_reservation, "--memory-reservation") if o.memory_reservation else 0,
        "MemorySwap": swap,
        "MemorySwappiness": None if o.memory_swappiness in (None, -1) else o.memory_swappiness,
        "OomKillDisable": o.oom_kill_disable,
        "PidsLimit": o.pids_limit,
        "Ulimits": [parse_ulimit(u) for u in o.ulimit] or None,
        "Mounts": [parse_mount(m) for m in o.mount] or None,
        "Init": True if o.init else None,
    }
    if unmasked is not None:
        host_config["MaskedPaths"] = host_config["ReadonlyPaths"] = unmasked
    if o.annotation:
        host_config["Annotations"] = dict(a.partition("=")[::2] for a in o.annotation)
    if o.kernel_memory:
        ram_in_bytes(o.kernel_memory, "--kernel-memory")   # refused as docker does, never sent
    if aliases and (network in ("", "default", "bridge", "host", "none") or network.startswith("container:")):
        raise UsageError("network-scoped aliases are only supported for user-defined networks")
    endpoints = network_endpoints(attachments, o)
    body: dict[str, Any] = {
        "Hostname": o.hostname or "",
        "Domainname": o.domainname or "",
        "User": o.user or "",
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "ExposedPorts": exposed or None,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive and a_in,
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": o.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": labels(o.label, o.label_file),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if o.stop_signal:
        body["StopSignal"] = o.stop_signal
    if "stop_timeout" in o.given:
        body["StopTimeout"] = o.stop_timeout
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if o.mac_address:
        body["MacAddress"] = o.mac_address
    if o.workdir and not o.workdir.startswith("/"):
        raise UsageError(f"the working directory '{o.workdir}' is invalid, it needs to be an absolute path")
    return body
