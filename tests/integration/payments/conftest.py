"""The fault-injecting proxy in front of the run's localstripe (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.payments.fault_proxy import FaultProxy


@pytest.fixture
async def proxy(localstripe_url: str) -> AsyncIterator[FaultProxy]:
    fault_proxy = FaultProxy(localstripe_url)
    await fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        await fault_proxy.close()
