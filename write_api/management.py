"""Companies, stations, tariffs and drivers' tokens: the administrative commands of every role.

Each command loads its aggregate, checks that the actor may touch it (an operator only their company's
objects, a driver only their own), runs the domain command and saves, retrying after a conflict. Every
method returns the log position of what it committed, for read-your-writes on the read side.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from csms.directories import IdTokenDirectory
from csms.domain import (
    Address,
    Company,
    Coordinates,
    Currency,
    Driver,
    IdToken,
    OpeningHours,
    Station,
    Tariff,
    TariffElement,
)
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from write_api.access import Actor, NotFound

A = TypeVar("A")


class TokenTaken(Exception):
    """The id token already belongs to another driver."""


@dataclass(frozen=True, slots=True)
class Written:
    id: UUID
    position: int


class Management:
    def __init__(
        self,
        repository: Repository,
        tokens: IdTokenDirectory,
        clock: Callable[[], datetime],
        retries: int = 3,
    ) -> None:
        self._repository = repository
        self._tokens = tokens
        self._clock = clock
        self._retries = retries

    # Companies (admin)

    async def create_company(self, actor: Actor, name: str) -> Written:
        actor.require("admin")
        company = Company.create(uuid.uuid4(), name, self._clock())
        return await self._save_new(company)

    async def suspend_company(self, actor: Actor, company_id: UUID, reason: str) -> Written:
        actor.require("admin")
        return await self._execute(company_id, Company, lambda c: c.suspend(reason, self._clock()))

    async def reactivate_company(self, actor: Actor, company_id: UUID) -> Written:
        actor.require("admin")
        return await self._execute(company_id, Company, lambda c: c.reactivate(self._clock()))

    async def company_exists(self, company_id: UUID) -> bool:
        try:
            await self._repository.get(company_id, Company)
        except AggregateNotFoundError:
            return False
        return True

    # Stations (operator of the company, or admin)

    async def create_station(
        self,
        actor: Actor,
        company_id: UUID | None,
        name: str,
        address: Address,
        coordinates: Coordinates,
        time_zone: str,
        opening_hours: OpeningHours | None,
        published: bool,
    ) -> Written:
        actor.require("operator", "admin")
        owner = actor.company_scope(company_id)
        company = await self._get(owner, Company, actor)
        company.ensure_active()
        at = self._clock()
        station = Station.create(
            uuid.uuid4(), owner, name, address, coordinates, time_zone, at, opening_hours
        )
        if published:
            station.publish(at)
        return await self._save_new(station)

    async def update_station(self, actor: Actor, station_id: UUID, changes: dict[str, Any]) -> Written:
        """`changes` may hold name, address, coordinates, time_zone, opening_hours, published, tariff_id."""
        actor.require("operator", "admin")
        await self._owned_station(actor, station_id)
        tariff_id = changes.get("tariff_id")
        if tariff_id is not None:
            tariff = await self._get(tariff_id, Tariff, actor)
            tariff.ensure_active()

        def change(station: Station) -> None:
            at = self._clock()
            fields = {k: changes[k] for k in ("name", "address", "coordinates", "time_zone", "opening_hours")}
            station.update(at, **{k: v for k, v in fields.items() if v is not None})
            if changes.get("published") is True:
                station.publish(at)
            elif changes.get("published") is False:
                station.unpublish(at)
            if tariff_id is not None:
                station.assign_tariff(tariff_id, at)

        return await self._execute(station_id, Station, change)

    # Tariffs (operator of the company, or admin)

    async def create_tariff(
        self,
        actor: Actor,
        company_id: UUID | None,
        name: str,
        currency: Currency,
        vat_percent: Decimal,
        elements: tuple[TariffElement, ...],
        parking_grace_period_s: int,
    ) -> Written:
        actor.require("operator", "admin")
        owner = actor.company_scope(company_id)
        await self._get(owner, Company, actor)
        tariff = Tariff.create(
            uuid.uuid4(), owner, name, currency, vat_percent, elements, self._clock(), parking_grace_period_s
        )
        return await self._save_new(tariff)

    # Id tokens

    async def add_id_token(self, actor: Actor, driver_id: UUID, token: IdToken) -> Written:
        """A driver links a card to their account; a card belongs to one driver platform-wide."""
        self._require_self(actor, driver_id)
        if not await self._tokens.claim(token.value, driver_id):
            raise TokenTaken(f"id token {token.value} is registered to another account")
        return await self._execute(driver_id, Driver, lambda d: d.add_id_token(token, self._clock()))

    async def set_token_blocked(self, actor: Actor, token_value: str, blocked: bool, reason: str) -> Written:
        """Operators and admins block a lost or abused card (or unblock it); drivers their own cards."""
        driver_id = await self._tokens.owner(token_value)
        if driver_id is None:
            raise NotFound(f"no id token {token_value}")
        if actor.role == "driver":
            self._require_self(actor, driver_id)
        else:
            actor.require("operator", "admin")

        def change(driver: Driver) -> None:
            if blocked:
                driver.block_id_token(token_value, reason, self._clock())
            else:
                driver.unblock_id_token(token_value, self._clock())

        return await self._execute(driver_id, Driver, change)

    async def update_profile(
        self, actor: Actor, driver_id: UUID, email: str | None, display_name: str | None
    ) -> Written:
        self._require_self(actor, driver_id)
        return await self._execute(
            driver_id,
            Driver,
            lambda d: d.update_profile(self._clock(), email=email, display_name=display_name),
        )

    # Internals

    @staticmethod
    def _require_self(actor: Actor, driver_id: UUID) -> None:
        if not (actor.is_admin or (actor.role == "driver" and actor.driver_id == driver_id)):
            raise NotFound(f"no driver {driver_id}")

    async def _owned_station(self, actor: Actor, station_id: UUID) -> Station:
        return await self._get(station_id, Station, actor)

    async def _get(self, aggregate_id: UUID, cls: type[A], actor: Actor) -> A:
        """The aggregate, if the actor may see it (companies: their own; company objects: their company's)."""
        try:
            aggregate = await self._repository.get(aggregate_id, cls, refresh=True)
        except AggregateNotFoundError:
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}") from None
        owner = aggregate_id if isinstance(aggregate, Company) else getattr(aggregate, "company_id", None)
        if owner is None or not actor.owns_company_object(owner):
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}")
        return aggregate

    async def _save_new(self, aggregate: Any) -> Written:
        results = await self._repository.save(aggregate)
        return Written(aggregate.id, max(r.position for r in results))

    async def _execute(self, aggregate_id: UUID, cls: type[A], command: Callable[[A], None]) -> Written:
        for attempt in range(self._retries + 1):
            try:
                aggregate = await self._repository.get(aggregate_id, cls, refresh=True)
            except AggregateNotFoundError:
                raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}") from None
            command(aggregate)
            try:
                results = await self._repository.save(aggregate)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
                continue
            position = max((r.position for r in results), default=0)
            return Written(aggregate_id, position)
        raise AssertionError("unreachable")
