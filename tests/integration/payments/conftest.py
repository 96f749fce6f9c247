"""localstripe for the payment tests: one subprocess per test run on a free loopback port, state in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from csms.localstripe import free_loopback_port, running_localstripe
from tests.integration.payments.fault_proxy import FaultProxy


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    with running_localstripe(free_loopback_port()) as url:
        yield url


@pytest.fixture
async def proxy(localstripe_url: str) -> AsyncIterator[FaultProxy]:
    fault_proxy = FaultProxy(localstripe_url)
    await fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        await fault_proxy.close()
