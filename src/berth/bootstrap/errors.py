"""The bootstrap package's error: a build that failed (mmdebstrap, the mirror, a recipe check).

Refusals of a NAME:TAG (unknown image, a tag Debian cannot honour) are `InvalidParameter`.
"""

from __future__ import annotations

from berth.errors import BerthError


class BootstrapError(BerthError):
    """A bootstrap build failed; the message says which step and why."""
