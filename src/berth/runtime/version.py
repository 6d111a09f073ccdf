"""Versions: berth-runtime's own and the OCI runtime-spec version it writes (as runc 1.1)."""

VERSION = "0.1.0"
OCI_VERSION = "1.0.2-dev"
