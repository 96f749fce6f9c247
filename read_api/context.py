"""What the read API's handlers find on the app: the read-model clients, under typed keys."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from read_api.freshness import Freshness

POOL = web.AppKey("read_pool", asyncpg.Pool)  # Postgres read models (views) and nothing else
REDIS = web.AppKey("read_redis", Redis)  # Redis read models, and the gateway's presence hashes
KEY_PREFIX = web.AppKey("key_prefix", str)  # the configured Redis key prefix (`csms:`)
FRESHNESS = web.AppKey("freshness", Freshness)
