"""Registry client: `RegistryClient` (pull, push, search, login) over aiohttp."""

from berth.registry.client.registry import RegistryClient

__all__ = ["RegistryClient"]
