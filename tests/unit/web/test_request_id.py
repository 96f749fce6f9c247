"""Request ids: taken from a well-formed `X-Request-ID` or generated, echoed on every response (problems and
streams included), and carried as `correlation_id` by every line logged about the request."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csms.web.problems import problem_error, problem_middleware
from csms.web.request_id import (
    REQUEST_ID_HEADER,
    document_request_ids,
    echo_request_id,
    request_id_middleware,
)
from tests.json_logs import json_logs
from write_api.http.openapi import document

_log = logging.getLogger("tests.request_id")


async def _thing(request: web.Request) -> web.StreamResponse:
    thing = request.match_info["thing_id"]
    _log.info("looking for a thing", extra={"thing": thing})
    if thing == "missing":
        raise problem_error(404, "Not found", "no such thing")
    if thing == "broken":
        raise RuntimeError("a bug")
    if thing == "stream":
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        return response
    return web.json_response({"id": thing})


def _app() -> web.Application:
    app = web.Application(middlewares=[request_id_middleware, problem_middleware])
    app.on_response_prepare.append(echo_request_id)
    app.router.add_get("/things/{thing_id}", _thing)
    return app


def _is_generated(value: str) -> bool:
    return str(uuid.UUID(value)) == value


async def test_a_well_formed_id_is_echoed_and_on_every_line_about_the_request() -> None:
    request_id = "3f2a9c1e-client.trace:01/AB+c="
    with json_logs() as log:
        async with TestClient(TestServer(_app())) as client:
            response = await client.get("/things/a", headers={REQUEST_ID_HEADER: request_id})
            assert response.status == 200
            await response.read()

    assert response.headers[REQUEST_ID_HEADER] == request_id
    handler_line = next(line for line in log.lines() if line["message"] == "looking for a thing")
    assert handler_line["correlation_id"] == request_id
    # The access log line is written after the middlewares returned: it carries the id all the same.
    [access] = [line for line in log.lines() if line["logger"] == "aiohttp.access"]
    assert access["correlation_id"] == request_id


async def test_an_id_is_generated_when_the_client_sends_none() -> None:
    with json_logs() as log:
        async with TestClient(TestServer(_app())) as client:
            first = await client.get("/things/a")
            second = await client.get("/things/b")

    generated = first.headers[REQUEST_ID_HEADER]
    assert _is_generated(generated)
    assert second.headers[REQUEST_ID_HEADER] != generated
    [line] = log.about(thing="a")
    assert line["correlation_id"] == generated


@pytest.mark.parametrize(
    "supplied",
    ["x" * 129, "", "has space", 'quo"te', "semi;colon", "<script>", "caf\u00e9"],
    ids=["too-long", "empty", "space", "quote", "semicolon", "markup", "non-ascii"],
)
async def test_an_ill_formed_id_is_replaced(supplied: str) -> None:
    with json_logs() as log:
        async with TestClient(TestServer(_app())) as client:
            response = await client.get("/things/a", headers={REQUEST_ID_HEADER: supplied})

    echoed = response.headers[REQUEST_ID_HEADER]
    assert echoed != supplied
    assert _is_generated(echoed)
    assert supplied not in {line.get("correlation_id") for line in log.lines()}
    assert log.about(thing="a")[0]["correlation_id"] == echoed


async def test_a_128_character_id_is_kept() -> None:
    async with TestClient(TestServer(_app())) as client:
        response = await client.get("/things/a", headers={REQUEST_ID_HEADER: "a" * 128})
    assert response.headers[REQUEST_ID_HEADER] == "a" * 128


async def test_problems_and_streams_echo_the_id_too() -> None:
    with json_logs() as log:
        async with TestClient(TestServer(_app())) as client:
            answers = {}
            for path in ("/things/missing", "/things/broken", "/nowhere", "/things/stream"):
                response = await client.get(
                    path, headers={REQUEST_ID_HEADER: f"req-{path[1:]}".replace("/", "-")}
                )
                await response.read()
                answers[path] = response

    assert answers["/things/missing"].status == 404
    assert answers["/things/broken"].status == 500
    assert answers["/nowhere"].status == 404
    assert answers["/things/stream"].status == 200
    for path, response in answers.items():
        assert response.headers[REQUEST_ID_HEADER] == f"req-{path[1:]}".replace("/", "-"), path
    [unhandled] = [line for line in log.lines() if line["message"].startswith("unhandled error")]
    assert unhandled["correlation_id"] == "req-things-broken"
    assert "a bug" in unhandled["exception"]


async def test_concurrent_requests_keep_their_own_ids() -> None:
    both_inside = asyncio.Barrier(2)

    async def slow(request: web.Request) -> web.Response:
        await both_inside.wait()  # each request logs only once the other one is in flight too
        _log.info("slow request", extra={"slow": request.match_info["name"]})
        return web.json_response({})

    app = _app()
    app.router.add_get("/slow/{name}", slow)
    with json_logs() as log:
        async with TestClient(TestServer(app)) as client:
            await asyncio.gather(
                client.get("/slow/one", headers={REQUEST_ID_HEADER: "id-one"}),
                client.get("/slow/two", headers={REQUEST_ID_HEADER: "id-two"}),
            )

    assert log.about(slow="one")[0]["correlation_id"] == "id-one"
    assert log.about(slow="two")[0]["correlation_id"] == "id-two"


def test_every_operation_documents_the_header_and_every_response_echoes_it() -> None:
    documented = document_request_ids(document())

    def resolve(reference: dict[str, Any]) -> Any:
        _, section, kind, name = reference["$ref"].split("/")
        return documented[section][kind][name]

    operations = [
        operation
        for path_item in documented["paths"].values()
        for operation in path_item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    assert operations
    for operation in operations:
        parameters = [resolve(p) if "$ref" in p else p for p in operation["parameters"]]
        assert [p for p in parameters if p["name"] == REQUEST_ID_HEADER and p["in"] == "header"]
        for response in operation["responses"].values():
            assert resolve(response["headers"][REQUEST_ID_HEADER])["schema"] == {"type": "string"}
    # Nothing else in the document changed.
    assert documented["components"]["schemas"] == document()["components"]["schemas"]
