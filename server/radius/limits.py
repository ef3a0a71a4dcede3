"""The per-user rate limit of the sign-in endpoints, for RADIUS: the same `TOKENWARD_RATE_LIMITS` user
limits and the same storage (`TOKENWARD_RATELIMIT_STORAGE`), keyed by user and NAS address as the HTTP
doors key it by user and client address. There is no per-address limit: a NAS speaks for many people, and
its shared secret already names it."""

from __future__ import annotations

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from server.config import Settings
from server.services.ratelimit_storage import SCHEME as DATABASE_SCHEME  # and registers database://
from server.services.ratelimit_storage import storage_options


class UserLimiter:
    def __init__(self, settings: Settings) -> None:
        storage_uri = settings.ratelimit_storage
        in_database = storage_uri.split(":", 1)[0] == DATABASE_SCHEME
        storage = storage_from_string(storage_uri, **storage_options(settings))
        assert isinstance(storage, Storage)  # a synchronous storage: the workers block anyway
        self.storage = storage
        self._limiter: RateLimiter = (
            FixedWindowRateLimiter(self.storage) if in_database else MovingWindowRateLimiter(self.storage)
        )
        self._items: list[RateLimitItem] = (
            [item for text in settings.rate_limits.per_user for item in parse_many(text)]
            if settings.rate_limits.enabled
            else []
        )

    def hit(self, *, username: str, nas_address: str) -> tuple[bool, int]:
        """Counts a request; (allowed, the refused limit's window in seconds)."""
        key = f"user:{username.lower()}|ip:{nas_address}"
        for item in self._items:
            if not self._limiter.hit(item, "tokenward-radius", key):
                return False, item.get_expiry()
        return True, 0

    def count_refusal(self, *, username: str, nas_address: str, window_seconds: int) -> int:
        return self.storage.incr(f"refused/radius/{username.lower()}|{nas_address}", window_seconds)
