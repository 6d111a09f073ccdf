"""berth-registry: an OCI distribution registry (Docker Registry HTTP API v2) with search and auth."""
