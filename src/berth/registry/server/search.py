"""`/v1/search` ranking over a registry's repositories, answered in Docker Hub's shape (pure).
Repositories under `library/` are reported as Docker Hub reports official images: by their
short name, with `is_official` true."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Repo:
    name: str
    description: str = ""


def score(repo: Repo, query: str) -> int:
    """How well `repo` matches `query` (0: not at all). Exact names beat prefixes beat
    substrings of the name beat matches in the description."""
    q = query.strip().lower()
    if not q:
        return 1
    name = repo.name.lower()
    last = name.rsplit("/", 1)[-1]
    if name == q or last == q:
        return 100
    if last.startswith(q):
        return 80
    if q in name:
        return 60
    if q in repo.description.lower():
        return 30
    return 0


def rank(repos: list[Repo], query: str) -> list[Repo]:
    scored = [(score(r, query), r) for r in repos]
    return [r for s, r in sorted(((s, r) for s, r in scored if s > 0), key=lambda t: (-t[0], t[1].name))]


def search_response(repos: list[Repo], query: str, n: int = 25, page: int = 1) -> dict[str, Any]:
    n = max(1, min(n, 100))
    page = max(1, page)
    hits = rank(repos, query)
    chunk = hits[(page - 1) * n: page * n]
    return {
        "num_pages": (len(hits) + n - 1) // n,
        "num_results": len(hits),
        "page_size": n,
        "page": page,
        "query": query,
        "results": [_result(r) for r in chunk],
    }


def _result(r: Repo) -> dict[str, Any]:
    """As Docker Hub answers: `library/x` repositories are the official `x`."""
    official = r.name.startswith("library/") and r.name.count("/") == 1
    return {"name": r.name.removeprefix("library/") if official else r.name, "description": r.description,
            "star_count": 0, "is_official": official, "is_automated": False}
