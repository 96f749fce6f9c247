"""The mobile app's drivers as locust users: find stations, look at one, charge, follow the session live.

A driver logs in once (`POST /auth/login` on the write API, the locust `--host`), then, between pauses of
one to three seconds: "stations near me" around the set-up's stations with the app's filters, a station's
details, the driver's session history (read API), and now and then a charge: `POST /sessions/start` on a free
charger, the live session (`GET /sessions/{id}`) until it has started and once a second while it charges
(`--charge-seconds`), `POST /sessions/stop`, and the live session again until it has stopped (four times a
second while it waits for the start or the stop).

The chargers that sessions run on are users of this file too (`SessionCharger`, as many as the set-up's
`sessionChargers`, spawned first): OCPP chargers that accept the remote starts and stops and report them.
So `-u` counts them: with 10 session chargers, `-u 60` is 10 chargers and 50 drivers.

    locust -f loadtests/locust/mobile_app.py --headless -u 60 -r 10 -t 60s --host http://127.0.0.1:8080

Besides the HTTP calls, two timings of type SESSION: start call → session seen STARTED on the read API,
and stop call → seen stopped; failing to see either within 30 s is a failure.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any, ClassVar

import gevent
from gevent.lock import BoundedSemaphore
from gevent.queue import Empty, Queue
from locust import HttpUser, between, constant, events, task
from locust.env import Environment

from loadtests.locust.chargers import OcppCharger
from loadtests.locust.setup_data import option, setup_data

_STOPPED: frozenset[str] = frozenset({"STOPPED", "PRICED", "PAID", "PAYMENT_FAILED"})
_ENDED_WITHOUT_CHARGING: frozenset[str] = frozenset({"REJECTED", "EXPIRED"})
_SEEN_WITHIN = 30.0
_POLL_SECONDS = 1.0  # the live session's refresh while charging
_WATCH_SECONDS = 0.25  # and while waiting for it to start or stop
_NEARBY_FILTERS: tuple[dict[str, str], ...] = (
    {},
    {"available": "true"},
    {"connector": "IEC_62196_T2", "minPowerKw": "11"},
    {"connector": "IEC_62196_T2_COMBO", "available": "true"},
)

# All drivers log in from this one address: a login throttle counts each attempt until it succeeds, so a
# crowd logging in at once would spend the address's budget (the app's users come from many addresses).
_logins = BoundedSemaphore(4)

free_chargers: Queue = Queue()
"""Session chargers that are connected and Available, for the next driver who wants to charge."""


class SessionCharger(OcppCharger):
    """A charger the drivers start sessions on: it heartbeats, and otherwise does what the CSMS asks."""

    credentials: ClassVar[str] = "sessionChargers"
    wait_time = constant(30)

    def on_connected(self) -> None:
        free_chargers.put(self)

    @task
    def beat(self) -> None:
        self.heartbeat()


def _spawn_session_chargers(environment: Environment, **_kwargs: Any) -> None:
    """One SessionCharger per session charger the set-up registered, spawned before any driver."""
    SessionCharger.fixed_count = len(setup_data(environment).chargers["sessionChargers"])


# locust leaves EventHook.add_listener unannotated.
events.init.add_listener(_spawn_session_chargers)  # type: ignore[no-untyped-call]


class Driver(HttpUser):
    """A driver with the app: mostly looking, sometimes charging."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        data = setup_data(self.environment)
        self.read_api = data.read_api
        self.stations = data.stations
        self.account = data.take_driver()
        self.headers: dict[str, str] = {}
        self._log_in()

    def _log_in(self) -> bool:
        """Log in (again, if an earlier try failed); whether the driver has a token."""
        if self.headers:
            return True
        with (
            _logins,
            self.client.post(
                "/auth/login",
                json={"email": self.account.email, "password": self.account.password},
                catch_response=True,
            ) as response,
        ):
            if response.status_code != 200:
                response.failure(f"login: {response.status_code} {response.text[:200]}")
                return False
            self.headers = {"Authorization": f"Bearer {response.json()['accessToken']}"}
            return True

    @task(6)
    def nearby(self) -> None:
        station = random.choice(self.stations)
        params = {
            "lat": f"{station.latitude + random.uniform(-0.02, 0.02):.5f}",
            "lon": f"{station.longitude + random.uniform(-0.03, 0.03):.5f}",
            "radiusKm": "5",
            **random.choice(_NEARBY_FILTERS),
        }
        self.client.get(f"{self.read_api}/stations/nearby", params=params, name="/stations/nearby")

    @task(3)
    def station(self) -> None:
        station = random.choice(self.stations)
        self.client.get(f"{self.read_api}/stations/{station.station_id}", name="/stations/{id}")

    @task(1)
    def history(self) -> None:
        if not self._log_in():
            return
        self.client.get(f"{self.read_api}/me/sessions", headers=self.headers, name="/me/sessions")

    @task(2)
    def charge(self) -> None:
        """A whole session, when a charger is free (else the driver looks around instead)."""
        if not self._log_in():
            return
        try:
            charger: SessionCharger = free_chargers.get_nowait()
        except Empty:
            return
        if charger.ws is None:
            return  # it lost its connection while free; it offers itself again once it has booted
        try:
            self._session(charger)
        finally:
            gevent.spawn(_release, charger)

    def _session(self, charger: SessionCharger) -> None:
        began = time.perf_counter()
        with self.client.post(
            "/sessions/start",
            json={"chargerId": charger.charger_id},
            # As the app sends it: a retried start must not start a second session.
            headers={**self.headers, "Idempotency-Key": str(uuid.uuid4())},
            name="/sessions/start",
            catch_response=True,
        ) as response:
            answer = response.json() if response.status_code == 201 else {}
            if answer.get("status") not in ("ACCEPTED", "STARTED"):
                response.failure(f"start: {response.status_code} {response.text[:200]}")
                return
        session_id, position = answer["sessionId"], int(answer.get("position") or 0)
        if not self._watch(session_id, position, {"STARTED", *_STOPPED}, "start → STARTED", began):
            return
        charging_until = time.monotonic() + option(self.environment, "charge_seconds", 10.0)
        while time.monotonic() < charging_until:
            gevent.sleep(_POLL_SECONDS)
            self._live(session_id, position)
        began = time.perf_counter()
        with self.client.post(
            "/sessions/stop",
            json={"sessionId": session_id},
            headers=self.headers,
            name="/sessions/stop",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"stop: {response.status_code} {response.text[:200]}")
                return
        self._watch(session_id, position, _STOPPED, "stop → stopped", began)

    def _live(self, session_id: str, position: int) -> str | None:
        """The live session as the app shows it (`minPosition`: at least as fresh as our start)."""
        with self.client.get(
            f"{self.read_api}/sessions/{session_id}",
            params={"minPosition": str(position)},
            headers=self.headers,
            name="/sessions/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return None
            status: str = response.json()["status"]
            return status

    def _watch(
        self, session_id: str, position: int, wanted: set[str] | frozenset[str], name: str, began: float
    ) -> bool:
        """Follow the live session until its status is one of `wanted`; timed as a SESSION request."""
        deadline = time.monotonic() + _SEEN_WITHIN
        status = None
        while time.monotonic() < deadline:
            status = self._live(session_id, position)
            if status in wanted or status in _ENDED_WITHOUT_CHARGING:
                break
            gevent.sleep(_WATCH_SECONDS)
        failure = None
        if status in _ENDED_WITHOUT_CHARGING or status not in wanted:
            failure = RuntimeError(f"session {session_id} is {status} after {_SEEN_WITHIN:.0f} s")
        self.environment.events.request.fire(
            request_type="SESSION",
            name=name,
            response_time=(time.perf_counter() - began) * 1e3,
            response_length=0,
            exception=failure,
            context={},
        )
        return failure is None


def _release(charger: SessionCharger) -> None:
    """Back to the free chargers once it reports Available again (a stopped session has ended there)."""
    if charger.available.wait(timeout=_SEEN_WITHIN) and charger.ws is not None:
        free_chargers.put(charger)
