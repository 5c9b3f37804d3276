"""Promotion: an adapter into production or back (the registry transition with its note), then the hot swap
that tells a running server. Used by `milton-lora promote` and by `cycle` alike; asking and printing are
the caller's.

The registry change is the promotion; a failed hot swap afterwards is reported, not raised, so the caller
can say "restart the server to serve it" without undoing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from milton_lora.errors import MiltonError
from milton_lora.settings import Settings, env_api_key

if TYPE_CHECKING:
    from milton_lora.registry import Entry, Registry


@dataclass(frozen=True)
class ServerNews:
    """What a running server said to the hot swap (`ok`), or why it could not take it."""

    message: str
    ok: bool


@dataclass(frozen=True)
class Promoted:
    """After a promotion or rollback: the adapter in production, the one archived, the server's answer."""

    production: Entry
    archived: Entry | None
    server: ServerNews


def promote(settings: Settings, registry: Registry, run_id: str, max_rank: int, command: str, force: bool,
            note: str | None) -> Promoted:  # fmt: skip
    """Make `run_id` the production adapter (checked unless `force`), then tell a running server.

    An adapter already in production is not moved again; a running server is brought in line with it,
    which finishes a promotion that was killed during its hot swap (the registry moved, the server not)."""
    if registry.get(run_id).status == "production":
        return Promoted(registry.get(run_id), None, tell_server(settings, registry))
    archived = registry.promote_to_production(run_id, force, max_rank, command, note)
    return Promoted(registry.get(run_id), archived, tell_server(settings, registry))


def roll_back(settings: Settings, registry: Registry, max_rank: int, command: str, note: str | None) -> Promoted:
    """Restore the previous production adapter, archiving the current one, then tell a running server."""
    archived, restored = registry.rollback(max_rank, command, note)
    return Promoted(restored, archived, tell_server(settings, registry))


def tell_server(settings: Settings, registry: Registry) -> ServerNews:
    """Hot-swap the production adapter into a running server (a no-op message when none runs)."""
    from milton_lora.serve.state import hot_swap

    try:
        return ServerNews(hot_swap(settings, registry, env_api_key()), ok=True)
    except MiltonError as exc:
        return ServerNews(f"{exc}; restart the server to serve it", ok=False)
