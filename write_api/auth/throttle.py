"""Login throttling in Redis: a budget of failed attempts per account and per client address per time window.

Fixed windows: the first counted attempt starts a window of `window_seconds`; once a budget is spent, logins
for that account (or from that address) get 429 with Retry-After until the window ends. An attempt is counted
*before* the password is checked, atomically with the check of both budgets, so a burst of parallel guesses
cannot slip through between check and count; a successful login gives its attempt back (the account's counter
is cleared, the address's decremented). Unknown emails are counted like known ones, so the 429 says nothing
about which accounts exist.

Keys: `{prefix}login-throttle:account:{sha256(email)[:32]}` (no email in clear in Redis) and
`{prefix}login-throttle:address:{ip}`, an IPv6 client counted by its /64 (one subscriber holds a whole /64).
Both keys go to one script, so a Redis Cluster would need them in one hash slot (a `{login}` tag).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from csms.redis_support import LuaScript, run_pipeline
from write_api.auth.errors import LoginThrottled

# KEYS: account, address. ARGV: account budget, address budget, window (ms).
# Returns 0 when the attempt is allowed (and counted), else the milliseconds until the later window ends.
_ATTEMPT = LuaScript(
    """
local wait = 0
for i = 1, 2 do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[3])
      ttl = tonumber(ARGV[3])
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return 0
"""
)

# KEYS: account, address. A success clears the account's counter and gives the address its attempt back.
_SUCCEEDED = LuaScript(
    """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    max_per_account: int = 5
    max_per_address: int = 20
    window_seconds: int = 15 * 60


class LoginThrottle:
    def __init__(self, redis: Redis, key_prefix: str, limits: ThrottleLimits | None = None) -> None:
        self._redis = redis
        self._prefix = key_prefix + "login-throttle:"
        self._limits = limits or ThrottleLimits()

    async def attempt(self, email: str, address: str) -> None:
        """Count a login attempt, or raise LoginThrottled (with Retry-After seconds) if a budget is spent."""
        limits = self._limits
        keys = self._keys(email, address)
        args = (limits.max_per_account, limits.max_per_address, limits.window_seconds * 1000)
        (wait_ms,) = await run_pipeline(
            self._redis, [_ATTEMPT], lambda pipe: pipe.evalsha(_ATTEMPT.sha, 2, *keys, *args)
        )
        if int(wait_ms) > 0:
            raise LoginThrottled(max(1, math.ceil(int(wait_ms) / 1000)))

    async def succeeded(self, email: str, address: str) -> None:
        """The attempt was a successful login: it does not count against either budget."""
        keys = self._keys(email, address)
        await run_pipeline(self._redis, [_SUCCEEDED], lambda pipe: pipe.evalsha(_SUCCEEDED.sha, 2, *keys))

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"{self._prefix}account:{account}", f"{self._prefix}address:{address_bucket(address)}"


def address_bucket(address: str) -> str:
    """The unit an address is throttled by: the IPv4 address, the IPv6 /64, or the text itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
