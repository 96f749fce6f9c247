"""The station discovery projector: keeps the Redis read model behind "chargers near me, free now, that fit".

Per batch it loads the states the events touch (stations with their chargers, tariffs, companies) in three
pipelined reads, applies the events to them in memory (`projections/station_model.py`), and queues on the
runner's MULTI both the new states and, for every station whose picture changed, its documents and index
entries (see `projections/station_keys.py` for the layout). A tariff change re-renders every station using
the tariff; a company suspension hides all of the company's stations (and reactivation shows them again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from redis.asyncio import Redis

from projections import station_keys as keys
from projections import station_model as model
from projections.projector import ProjectedEvent, RedisView

_STATION_TOPICS = (
    "Station.Created",
    "Station.Updated",
    "Station.Published",
    "Station.Unpublished",
    "Station.TariffAssigned",
    "Station.TariffUnassigned",
    "Station.Removed",
)
_CHARGER_TOPICS = (
    "Charger.Registered",
    "Charger.EvsesConfigured",
    "Charger.ConnectorStatusChanged",
    "Charger.Connected",
    "Charger.Disconnected",
    "Charger.AvailabilityChanged",
    "Charger.Decommissioned",
)
_TARIFF_TOPICS = (
    "Tariff.Created",
    "Tariff.Renamed",
    "Tariff.ElementsReplaced",
    "Tariff.VatChanged",
    "Tariff.ParkingGracePeriodChanged",
    "Tariff.Archived",
)
_COMPANY_TOPICS = ("Company.Created", "Company.Renamed", "Company.Suspended", "Company.Reactivated")


_Members = dict[str, set[str]]


class StationDiscoveryProjector:
    name = keys.NAME
    topics = frozenset((*_STATION_TOPICS, *_CHARGER_TOPICS, *_TARIFF_TOPICS, *_COMPANY_TOPICS))

    async def apply(self, view: RedisView, events: Sequence[ProjectedEvent]) -> None:
        batch = _Batch(view)
        await batch.load(events)
        for projected in events:
            batch.apply(projected)
        batch.write()


class _Batch:
    """The states one batch works on, loaded up front, and what it changed."""

    def __init__(self, view: RedisView) -> None:
        self._view = view
        self.stations: dict[str, model.StationState] = {}
        self.charger_station: dict[str, str] = {}
        self.tariffs: dict[str, model.TariffState] = {}
        self.companies: dict[str, model.CompanyState] = {}
        # Stations per tariff and per company, for the tariffs and companies this batch has events of.
        self.tariff_members: _Members = {}
        self.company_members: _Members = {}
        self._dirty_stations: set[str] = set()
        self._dirty_tariffs: set[str] = set()
        self._dirty_companies: set[str] = set()
        self._new_chargers: dict[str, str] = {}

    # ------------------------------------------------------------------ loading

    async def load(self, events: Sequence[ProjectedEvent]) -> None:
        station_ids: set[str] = set()
        charger_ids: set[str] = set()
        tariff_ids: set[str] = set()
        company_ids: set[str] = set()
        member_tariffs: set[str] = set()
        member_companies: set[str] = set()
        for projected in events:
            topic, event, stream = projected.topic, projected.event, str(projected.stream_id)
            if topic.startswith("Station."):
                station_ids.add(stream)
                if topic == "Station.Created":
                    company_ids.add(str(event.company_id))
                elif topic == "Station.TariffAssigned":
                    tariff_ids.add(str(event.tariff_id))
            elif topic.startswith("Charger."):
                charger_ids.add(stream)
                if topic == "Charger.Registered":
                    station_ids.add(str(event.station_id))
            elif topic.startswith("Tariff."):
                tariff_ids.add(stream)
                member_tariffs.add(stream)
            elif topic.startswith("Company."):
                company_ids.add(stream)
                member_companies.add(stream)

        redis: Redis = self._view.redis
        key = self._view.key
        async with redis.pipeline(transaction=False) as pipe:
            for station_id in sorted(station_ids):
                pipe.get(key(keys.station_state(station_id)))
            pipe.hmget(key(keys.CHARGER_STATION), sorted(charger_ids) or [""])
            for tariff_id in sorted(member_tariffs):
                pipe.smembers(key(keys.tariff_stations(tariff_id)))
            for company_id in sorted(member_companies):
                pipe.smembers(key(keys.company_stations(company_id)))
            results = list(await pipe.execute())
        for station_id in sorted(station_ids):
            self._take_station(station_id, results.pop(0))
        for charger_id, station_id in zip(sorted(charger_ids), results.pop(0), strict=False):
            if station_id is not None:
                self.charger_station[charger_id] = _text(station_id)
        for tariff_id in sorted(member_tariffs):
            self.tariff_members[tariff_id] = {_text(m) for m in results.pop(0)}
        for company_id in sorted(member_companies):
            self.company_members[company_id] = {_text(m) for m in results.pop(0)}

        # Stations reached through a charger, a tariff or a company.
        more = {*self.charger_station.values()}
        for members in (*self.tariff_members.values(), *self.company_members.values()):
            more |= members
        await self._load_stations(more - self.stations.keys())

        for station in self.stations.values():
            if station.tariff_id is not None:
                tariff_ids.add(station.tariff_id)
            if station.company_id is not None:
                company_ids.add(station.company_id)
        await self._load_tariffs_and_companies(tariff_ids, company_ids)

    async def _load_stations(self, station_ids: Iterable[str]) -> None:
        wanted = sorted(station_ids)
        if not wanted:
            return
        raw = await self._view.redis.mget([self._view.key(keys.station_state(s)) for s in wanted])
        for station_id, value in zip(wanted, raw, strict=True):
            self._take_station(station_id, value)

    def _take_station(self, station_id: str, raw: bytes | str | None) -> None:
        if raw is not None:
            self.stations[station_id] = model.load_station(raw)

    async def _load_tariffs_and_companies(self, tariff_ids: set[str], company_ids: set[str]) -> None:
        tariffs, companies = sorted(tariff_ids), sorted(company_ids)
        if not tariffs and not companies:
            return
        async with self._view.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._view.key(keys.TARIFFS), tariffs or [""])
            pipe.hmget(self._view.key(keys.COMPANIES), companies or [""])
            tariff_values, company_values = await pipe.execute()
        for tariff_id, value in zip(tariffs, tariff_values, strict=False):
            if value is not None:
                self.tariffs[tariff_id] = model.load_tariff(value)
        for company_id, value in zip(companies, company_values, strict=False):
            if value is not None:
                self.companies[company_id] = model.load_company(value)

    # ------------------------------------------------------------------ applying

    def apply(self, projected: ProjectedEvent) -> None:
        topic = projected.topic
        if topic.startswith("Station."):
            self._station_event(projected)
        elif topic.startswith("Charger."):
            self._charger_event(projected)
        elif topic.startswith("Tariff."):
            self._tariff_event(projected)
        elif topic.startswith("Company."):
            self._company_event(projected)

    def _station(self, station_id: str) -> model.StationState:
        station = self.stations.get(station_id)
        if station is None:
            station = self.stations[station_id] = model.StationState(station_id=station_id)
        return station

    def _station_event(self, projected: ProjectedEvent) -> None:
        station = self._station(str(projected.stream_id))
        tariff_before = station.tariff_id
        if not model.apply_station_event(station, projected.topic, projected.event, projected.stream_version):
            return
        self._dirty_stations.add(station.station_id)
        if projected.topic == "Station.Created" and station.company_id is not None:
            self._join(self.company_members, keys.company_stations, station.company_id, station.station_id)
        if station.tariff_id != tariff_before:
            if tariff_before is not None:
                self._leave(self.tariff_members, keys.tariff_stations, tariff_before, station.station_id)
            if station.tariff_id is not None:
                self._join(self.tariff_members, keys.tariff_stations, station.tariff_id, station.station_id)

    def _charger_event(self, projected: ProjectedEvent) -> None:
        topic, event, charger_id = projected.topic, projected.event, str(projected.stream_id)
        if topic == "Charger.Registered":
            station = self._station(str(event.station_id))
            if charger_id in station.chargers:
                return  # registered before: a replay
            station.chargers[charger_id] = model.new_charger(event, projected.stream_version)
            self.charger_station[charger_id] = station.station_id
            self._new_chargers[charger_id] = station.station_id
            self._dirty_stations.add(station.station_id)
            return
        station_id = self.charger_station.get(charger_id)
        charger = None if station_id is None else self._station(station_id).chargers.get(charger_id)
        if station_id is None or charger is None:
            return  # a charger never registered here: nothing to show
        if model.apply_charger_event(charger, topic, event, projected.stream_version):
            self._dirty_stations.add(station_id)

    def _tariff_event(self, projected: ProjectedEvent) -> None:
        topic, event, tariff_id = projected.topic, projected.event, str(projected.stream_id)
        tariff = self.tariffs.get(tariff_id)
        if topic == "Tariff.Created":
            if tariff is not None:
                return
            self.tariffs[tariff_id] = model.new_tariff(event, projected.stream_version)
        elif tariff is None or not model.apply_tariff_event(tariff, topic, event, projected.stream_version):
            return
        self._dirty_tariffs.add(tariff_id)
        self._dirty_stations |= self.tariff_members.get(tariff_id, set())

    def _company_event(self, projected: ProjectedEvent) -> None:
        topic, event, company_id = projected.topic, projected.event, str(projected.stream_id)
        company = self.companies.get(company_id)
        if topic == "Company.Created":
            if company is not None:
                return
            self.companies[company_id] = model.new_company(event, projected.stream_version)
        elif company is None or not model.apply_company_event(
            company, topic, event, projected.stream_version
        ):
            return
        self._dirty_companies.add(company_id)
        self._dirty_stations |= self.company_members.get(company_id, set())

    def _join(self, members: _Members, key: Callable[[str], str], owner: str, station_id: str) -> None:
        # In memory only where the batch loaded the whole set (it has events of that tariff or company).
        if owner in members:
            members[owner].add(station_id)
        self._view.tx.sadd(self._view.key(key(owner)), station_id)

    def _leave(self, members: _Members, key: Callable[[str], str], owner: str, station_id: str) -> None:
        if owner in members:
            members[owner].discard(station_id)
        self._view.tx.srem(self._view.key(key(owner)), station_id)

    # ------------------------------------------------------------------ writing

    def write(self) -> None:
        tx, key = self._view.tx, self._view.key
        if self._new_chargers:
            # A literal, not the dict itself: redis-py's Mapping of field types is invariant.
            tx.hset(key(keys.CHARGER_STATION), mapping={c: s for c, s in self._new_chargers.items()})
        if self._dirty_tariffs:
            tx.hset(
                key(keys.TARIFFS),
                mapping={t: model.dump_tariff(self.tariffs[t]) for t in sorted(self._dirty_tariffs)},
            )
        if self._dirty_companies:
            tx.hset(
                key(keys.COMPANIES),
                mapping={c: model.dump_company(self.companies[c]) for c in sorted(self._dirty_companies)},
            )
        for station_id in sorted(self._dirty_stations):
            station = self.stations.get(station_id)
            if station is not None:
                self._write_station(station)

    def _write_station(self, station: model.StationState) -> None:
        tx, key, station_id = self._view.tx, self._view.key, station.station_id
        tariff = None if station.tariff_id is None else self.tariffs.get(station.tariff_id)
        company = None if station.company_id is None else self.companies.get(station.company_id)
        rendered = model.render(station, tariff, company)
        if rendered.card is not None:
            tx.hset(key(keys.CARDS), station_id, rendered.card)
        else:
            tx.hdel(key(keys.CARDS), station_id)
        if rendered.doc is not None:
            tx.set(key(keys.doc(station_id)), rendered.doc)
        else:
            tx.delete(key(keys.doc(station_id)))
        for uid, body in rendered.evses.items():
            tx.set(key(keys.evse(uid)), body)
        gone = [key(keys.evse(uid)) for uid in station.rendered_uids if uid not in rendered.evses]
        if gone:
            tx.delete(*gone)
        # A station is in the GEO set and the power sorted set of every facet it fits (see station_keys);
        # it fits none when it has no place in the GEO index.
        if rendered.geo is not None:
            longitude, latitude = rendered.geo
            for facet, power in rendered.facets.items():
                tx.geoadd(key(keys.geo(facet)), (longitude, latitude, station_id))
                tx.zadd(key(keys.match(facet)), {station_id: power})
        for facet in station.rendered_facets:
            if facet not in rendered.facets:
                tx.zrem(key(keys.geo(facet)), station_id)
                tx.zrem(key(keys.match(facet)), station_id)
        station.rendered_uids = sorted(rendered.evses)
        station.rendered_facets = sorted(rendered.facets)
        tx.set(key(keys.station_state(station_id)), model.dump_station(station))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
