"""Registering chargers and rotating their OCPP passwords: the password exists only in the caller's hands."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from csms.credentials import hash_charger_password, new_charger_password
from csms.domain import (
    Charger,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    Evse,
    InvalidValue,
    PowerType,
    Station,
    charger_id_for,
)
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from write_api.access import NotFound

_DC_STANDARDS = {
    ConnectorStandard.IEC_62196_T2_COMBO,
    ConnectorStandard.IEC_62196_T1_COMBO,
    ConnectorStandard.CHADEMO,
}
_EVSE_SPEC = re.compile(r"^(?P<evse>\d+):(?P<standard>[A-Z0-9_]+):(?P<kw>\d+(\.\d+)?)$")


class ChargerAdminError(ValueError):
    """A registration or rotation that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class RegisteredCharger:
    charger_id: UUID
    charge_point_id: str
    password: str  # shown once; only its hash is stored
    position: int | None = None  # log position of the registration, for read-your-writes


def parse_evse(spec: str) -> Evse:
    """`EVSE:STANDARD:KW`, e.g. `1:IEC_62196_T2_COMBO:150`: one connector; DC for CCS and CHAdeMO."""
    match = _EVSE_SPEC.match(spec)
    if match is None:
        raise ChargerAdminError(f"EVSE {spec!r} is not EVSE:STANDARD:KW (e.g. 1:IEC_62196_T2_COMBO:150)")
    try:
        standard = ConnectorStandard(match["standard"])
    except ValueError:
        known = ", ".join(s.value for s in ConnectorStandard)
        raise ChargerAdminError(f"unknown connector standard {match['standard']!r}; one of {known}") from None
    dc = standard in _DC_STANDARDS
    connector = Connector(
        connector_id=1,
        standard=standard,
        format=ConnectorFormat.CABLE if dc else ConnectorFormat.SOCKET,
        power_type=PowerType.DC if dc else PowerType.AC_3_PHASE,
        max_power_w=round(float(match["kw"]) * 1000),
    )
    return Evse(int(match["evse"]), (connector,))


class ChargerAdmin:
    def __init__(self, repository: Repository, clock: Callable[[], datetime]) -> None:
        self._repository = repository
        self._clock = clock

    async def register(
        self, company_id: UUID, station_id: UUID, charge_point_id: str, evses: tuple[Evse, ...]
    ) -> RegisteredCharger:
        at = self._clock()
        try:
            company = await self._repository.get(company_id, Company)
            station = await self._repository.get(station_id, Station)
        except AggregateNotFoundError as error:
            raise NotFound(str(error)) from None
        company.ensure_active()
        if station.company_id != company_id:
            # Another company's station looks exactly like a missing one, so its id cannot be probed.
            raise NotFound(f"no station {station_id}")
        password = new_charger_password()
        try:
            charger = Charger.register(
                charger_id_for(charge_point_id),
                company_id,
                station_id,
                charge_point_id,
                hash_charger_password(password),
                evses,
                at,
            )
            results = await self._repository.save(charger)
        except InvalidValue as error:
            raise ChargerAdminError(str(error)) from None
        except ConcurrencyError:
            raise ChargerAdminError(f"a charger with id {charge_point_id!r} is already registered") from None
        return RegisteredCharger(charger.id, charge_point_id, password, max(r.position for r in results))

    async def company_of(self, charge_point_id: str) -> UUID | None:
        """The company owning the charger, or None if there is no such charger."""
        try:
            charger = await self._repository.get(charger_id_for(charge_point_id), Charger, refresh=True)
        except (AggregateNotFoundError, InvalidValue):
            return None
        return None if charger.decommissioned else charger.company_id

    async def rotate_password(self, charge_point_id: str) -> RegisteredCharger:
        """A new password; the old one stops working at the charger's next connection (the gateway reads the
        charger fresh on every connect, so no restart is needed)."""
        password = new_charger_password()
        new_hash = hash_charger_password(password)
        at = self._clock()
        try:
            charger_id = charger_id_for(charge_point_id)
            await self._repository.execute(charger_id, Charger, lambda c: c.rotate_password(new_hash, at))
        except (AggregateNotFoundError, InvalidValue):
            raise ChargerAdminError(f"no charger with id {charge_point_id!r}") from None
        return RegisteredCharger(charger_id, charge_point_id, password)
