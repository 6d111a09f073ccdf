"""`berth-registry serve|garbage-collect`: command line and config file of the registry.

The config file (JSON, or TOML when it ends in .toml) holds the same settings as the flags:
`listen`, `root`, `htpasswd`, `token_auth`, `anonymous_pull`, `service`, `realm`,
`tls_cert`, `tls_key`, `read_only`. Flags given on the command line win."""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
import tomllib
from pathlib import Path
from typing import Any

from aiohttp import web

from berth.registry.server.app import Registry, ServerSettings
from berth.registry.server.auth import AuthSettings
from berth.registry.server.gc import collect
from berth.registry.server.storage import FilesystemDriver

KEYS = ("listen", "root", "htpasswd", "token_auth", "anonymous_pull", "service", "realm",
        "tls_cert", "tls_key", "read_only")


def load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    data = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    unknown = set(data) - set(KEYS)
    if unknown:
        raise SystemExit(f"berth-registry: unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    return data


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="berth-registry", description="OCI distribution registry")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the registry API")
    s.add_argument("--config")
    s.add_argument("--listen")
    s.add_argument("--root")
    s.add_argument("--htpasswd")
    s.add_argument("--token-auth", action="store_true", default=None)
    s.add_argument("--anonymous-pull", action="store_true", default=None)
    s.add_argument("--service")
    s.add_argument("--realm")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--read-only", action="store_true", default=None)
    s.add_argument("--no-fsync", action="store_true", help="skip fsync before publishing blobs (tests)")
    g = sub.add_parser("garbage-collect", help="remove blobs no manifest refers to")
    g.add_argument("--root", required=True)
    g.add_argument("--dry-run", action="store_true")
    g.add_argument("--keep-recent", type=float, default=600, metavar="SECONDS",
                   help="keep unreferenced blobs younger than this (a push may be under way); default 600")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    if args.cmd == "garbage-collect":
        res = collect(FilesystemDriver(args.root), dry_run=args.dry_run, keep_recent=args.keep_recent)
        verb = "would remove" if args.dry_run else "removed"
        for d in res.removed:
            print(f"{verb} {d}")
        print(f"{len(res.removed)} blobs {verb} ({res.freed_bytes} bytes), {res.kept} kept, "
              f"{res.uploads_removed} stale uploads")
        return 0
    conf: dict[str, Any] = load_config(args.config) if args.config else {}
    for k in KEYS:
        v = getattr(args, k, None)
        if v is not None:
            conf[k] = v
    if not conf.get("root"):
        raise SystemExit("berth-registry: --root is required")
    listen = conf.get("listen", "127.0.0.1:5000")
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"berth-registry: --listen {listen!r}: want HOST:PORT")
    auth = AuthSettings(htpasswd=conf.get("htpasswd"), token_auth=bool(conf.get("token_auth")),
                        anonymous_pull=bool(conf.get("anonymous_pull")),
                        service=conf.get("service") or "berth-registry", realm=conf.get("realm"))
    settings = ServerSettings(root=Path(conf["root"]), auth=auth, read_only=bool(conf.get("read_only")),
                              fsync=not args.no_fsync)
    Path(settings.root).mkdir(parents=True, exist_ok=True)
    try:
        registry = Registry(settings)
    except ValueError as exc:
        raise SystemExit(f"berth-registry: {exc}") from None
    ssl_ctx = None
    if conf.get("tls_cert") or conf.get("tls_key"):
        if not (conf.get("tls_cert") and conf.get("tls_key")):
            raise SystemExit("berth-registry: --tls-cert and --tls-key go together")
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(conf["tls_cert"], conf["tls_key"])
    logging.getLogger("berth.registry").info(
        "berth-registry serving %s on %s://%s (auth: %s%s)", settings.root, "https" if ssl_ctx else "http", listen,
        "token" if auth.token_auth else ("basic" if auth.htpasswd else "none"),
        ", read-only" if settings.read_only else "")
    web.run_app(registry.build_app(), host=host.strip("[]") or "0.0.0.0", port=int(port), ssl_context=ssl_ctx,
                access_log=None, print=None, handle_signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
