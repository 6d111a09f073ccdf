"""Base images from Debian packages (`berth bootstrap NAME:TAG`), for sites without Docker Hub.

`build_image(name_tag, out_path, log=print) -> BootstrapResult` builds a recipe from
`berth.bootstrap.recipes` with mmdebstrap (or the host's busybox-static) into a
`docker save` archive; `recipes.list_recipes()` lists what can be built.
"""

from __future__ import annotations

from .builder import BootstrapResult, build_image
from .errors import BootstrapError
from .recipes import list_recipes, lookup

__all__ = ["BootstrapError", "BootstrapResult", "build_image", "list_recipes", "lookup"]
