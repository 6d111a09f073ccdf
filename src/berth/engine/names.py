"""Container names: Docker's validity rule and random `adjective_noun` names."""

from __future__ import annotations

import re
import secrets

from berth.errors import InvalidParameter

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = ["admiring", "brave", "busy", "calm", "clever", "cool", "eager", "elated", "epic", "fervent",
         "focused", "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind", "lucid", "magical",
         "modest", "nifty", "nostalgic", "peaceful", "quirky", "relaxed", "serene", "sharp", "stoic",
         "sweet", "tender", "trusting", "upbeat", "vibrant", "wizardly", "youthful", "zealous"]
_RIGHT = ["albattani", "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermat",
          "feynman", "galileo", "gauss", "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace",
          "mccarthy", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson",
          "torvalds", "turing", "wozniak", "yalow"]


def validate(name: str) -> str:
    """Return the name without a leading slash or raise Docker's error."""
    if not VALID_NAME.match(name):
        raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def random_name() -> str:
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}"
