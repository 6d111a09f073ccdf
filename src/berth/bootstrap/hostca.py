"""The host's locally added certificate authorities, for images that carry ca-certificates.

Sites that reach the network through a TLS-inspecting proxy (this test machine does: PyPI
answers with a certificate signed by a local CA) add that CA under
/usr/local/share/ca-certificates. An image trusting only Debian's CA list cannot `pip
install` there, so recipes that include `ca-certificates` get the same local CAs, installed
with `update-ca-certificates` inside the image; the output and the label
`io.berth.bootstrap.host-ca` name them. `BERTH_BOOTSTRAP_HOST_CA=0` (or `host_ca=False`)
leaves them out. They are public certificates, never keys.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_CA_ENV = "BERTH_BOOTSTRAP_HOST_CA"
IMAGE_CA_DIR = "/usr/local/share/ca-certificates"


@dataclass(frozen=True)
class HostCA:
    name: str        # relative path under the CA directory, e.g. "corp/proxy.crt"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def wanted(host_ca: bool | None) -> bool:
    if host_ca is not None:
        return host_ca
    return os.environ.get(HOST_CA_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def host_cas(directory: Path = HOST_CA_DIR) -> list[HostCA]:
    """PEM certificates (*.crt, as update-ca-certificates wants them), in name order."""
    if not directory.is_dir():
        return []
    found = []
    for p in sorted(directory.rglob("*.crt")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data and b"PRIVATE KEY" not in data:
            found.append(HostCA(str(p.relative_to(directory)), data))
    return found


def stage(cas: list[HostCA], dest: Path) -> Path:
    """Write the certificates under `dest` (mode 0644) for mmdebstrap's sync-in hook."""
    dest.mkdir(parents=True, exist_ok=True)
    for ca in cas:
        f = dest / ca.name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(ca.data)
        f.chmod(0o644)
    return dest


def label(cas: list[HostCA]) -> str:
    return " ".join(f"{ca.name}=sha256:{ca.sha256[:16]}" for ca in cas)
