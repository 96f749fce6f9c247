"""localstripe (a Stripe-compatible server from PyPI) for development and tests, run the way we need it.

`python -m csms.localstripe --port N` serves localstripe's own application on 127.0.0.1 only (its own
launcher listens on every interface), keeps its state in a file we choose or only in memory (its own
launcher rewrites /tmp/localstripe.pickle, shared by every instance, after every change), finds a type's
objects through an index rather than a scan of everything it holds (so a payment costs the same after
thousands of them), and lets a publishable key create PaymentMethods as real Stripe does, so a client
tokenizes a card the same way against both.

`running_localstripe` starts that as a subprocess and `configure_webhook` points its webhooks at us.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint, configured_endpoint

_log = logging.getLogger(__name__)

LOCALSTRIPE_SECRET_KEY = "sk_test_localstripe"  # noqa: S105 - localstripe accepts any sk_ key
LOCALSTRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
DEV_WEBHOOK_SECRET = "whsec_localstripe_development"  # noqa: S105 - signs development webhooks only
_START_TIMEOUT_SECONDS = 30.0


def _bearer_key(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer":
        return value
    if scheme == "Basic":
        with contextlib.suppress(ValueError):
            return base64.b64decode(value).decode().split(":", 1)[0]
    return None


@web.middleware
async def _publishable_key_may_create_payment_methods(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # Stripe.js creates a PaymentMethod with the publishable key; localstripe only lets pk_ keys in on a few
    # other routes. Present such a request to localstripe as an authenticated one.
    key = _bearer_key(request.headers.get("Authorization", ""))
    if request.method == "POST" and request.path == "/v1/payment_methods" and key and key.startswith("pk_"):
        headers = request.headers.copy()
        headers["Authorization"] = f"Bearer {LOCALSTRIPE_SECRET_KEY}"
        request = request.clone(headers=headers)
    return await handler(request)


def _keep_store_in(path: Path | None) -> None:
    """The store indexed by object type, kept in `path` (or only in memory), written once per request.

    localstripe lists the objects of a type (a charge's refunds, which every charge it returns or sends in an
    event reads more than once) by scanning its whole store, so each payment cost more than the one before:
    16 ms of its CPU per PaymentIntent after 2,500 of them, which made it the bottleneck of a long load run.
    It also rewrote its file after every change as well as after every request; once per request is enough.
    """
    from localstripe import resources
    from localstripe.errors import UserError

    by_type: dict[str, dict[str, Any]] = {}

    def type_of(key: object) -> str | None:
        # Objects are stored as "type:id"; a few singletons (the balance) under their type alone.
        kind, colon, _ = key.partition(":") if isinstance(key, str) else ("", "", "")
        return kind if colon else None

    def index(store: Any) -> None:
        by_type.clear()
        for key, value in store.items():
            kind = type_of(key)
            if kind is not None:
                by_type.setdefault(kind, {})[key] = value

    def set_item(store: Any, key: Any, value: Any) -> None:
        dict.__setitem__(store, key, value)
        kind = type_of(key)
        if kind is not None:
            by_type.setdefault(kind, {})[key] = value

    def del_item(store: Any, key: Any) -> None:
        dict.__delitem__(store, key)
        kind = type_of(key)
        if kind is not None:
            by_type.get(kind, {}).pop(key, None)

    def clear(store: Any) -> None:
        dict.clear(store)
        by_type.clear()

    def list_all(
        cls: type[Any],
        /,
        url: str | None,
        limit: int | None = None,
        starting_after: str | None = None,
        **kwargs: Any,
    ) -> Any:
        # localstripe's own StripeObject._api_list_all, reading the type's index instead of every object.
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        listed = resources.List(url, limit=limit, starting_after=starting_after)
        listed._list = list(by_type.get(cls.object, {}).values())
        return listed

    def dump(store: Any) -> None:
        if path is not None:
            temporary = path.with_suffix(".tmp")
            with temporary.open("wb") as file:
                pickle.dump(dict(store), file, protocol=pickle.HIGHEST_PROTOCOL)
            temporary.replace(path)

    def load(store: Any) -> None:
        if path is not None and path.exists():
            with path.open("rb") as file:
                dict.update(store, pickle.load(file))  # noqa: S301 - our own file, written just above
        index(store)

    resources.Store.__setitem__ = set_item
    resources.Store.__delitem__ = del_item
    resources.Store.clear = clear
    resources.Store.dump_to_disk = dump
    resources.Store.try_load_from_disk = load
    resources.StripeObject._api_list_all = classmethod(list_all)
    resources.store.try_load_from_disk()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m csms.localstripe")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", type=Path, help="file keeping the state across restarts (default: memory)")
    args = parser.parse_args(argv)
    _keep_store_in(args.store)
    from localstripe import server

    app: web.Application = server.app
    app.middlewares.insert(0, _publishable_key_may_create_payment_methods)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running_localstripe(port: int, store: Path | None = None) -> Iterator[str]:
    """A localstripe on 127.0.0.1:`port` (one already answering there is reused); yields its base URL."""
    url = f"http://127.0.0.1:{port}"
    if _answers(port):
        _log.info("using the localstripe already running", extra={"url": url})
        yield url
        return
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "csms.localstripe", "--port", str(port)]
    if store is not None:
        command += ["--store", str(store)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 - our own interpreter and module
    try:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {process.returncode} (is port {port} taken?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"localstripe did not answer on port {port} in {_START_TIMEOUT_SECONDS}s")
            time.sleep(0.1)
        _log.info("localstripe started", extra={"url": url, "pid": process.pid})
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def configure_webhook(base_url: str, name: str, target_url: str, secret: str) -> None:
    """Have localstripe sign its events with `secret` and POST them to `target_url` (as a Stripe endpoint)."""
    data = f"url={target_url}&secret={secret}".encode()
    request = urllib.request.Request(f"{base_url}/_config/webhooks/{name}", data=data, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    main()


@contextlib.contextmanager
def development_stripe(settings: Settings) -> Iterator[StripeEndpoint]:
    """The configured Stripe, or (with neither STRIPE_API_KEY nor CSMS_STRIPE_API_BASE set) a localstripe on
    CSMS_LOCALSTRIPE_PORT keeping its state under the data folder, sending its webhooks to our write API."""
    configured = configured_endpoint(settings)
    if configured is not None:
        yield configured
        return
    store = (settings.data_dir / "localstripe" / "store.pickle").absolute()
    with running_localstripe(settings.localstripe_port, store) as url:
        secret = settings.stripe_webhook_secret or DEV_WEBHOOK_SECRET
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        configure_webhook(url, "csms", f"http://{host}:{settings.write_api_port}/webhooks/stripe", secret)
        yield StripeEndpoint(api_key=LOCALSTRIPE_SECRET_KEY, api_base=url, webhook_secret=secret)
