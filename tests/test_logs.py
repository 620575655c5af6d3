"""Log lines: text and JSON formatters with fixed fields, one access line per
request, and the request id on every line logged while serving it (storage
traces included, at debug level only)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entrepot import logs
from entrepot.api import App, Context
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.instrumented import InstrumentedDriver
from entrepot.storage.registry import Registry


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Route the root logger (as `logs.configure` sets it up) to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def point_at(stream: io.StringIO) -> None:
    for handler in logging.getLogger().handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)


async def serve_one_request(root: Path) -> None:
    registry = Registry(InstrumentedDriver(FilesystemDriver(root)))
    transport = httpx.ASGITransport(app=App(Context(registry)))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        response = await http.get(
            "/v2/some/repo/tags/list", headers={"X-Request-Id": "req-42", "User-Agent": "t/1"}
        )
    assert response.status_code == 404


async def test_json_lines_carry_the_request_id_everywhere(
    captured: io.StringIO, tmp_path: Path
) -> None:
    logs.configure("debug", "json", {"service": "registry"})
    point_at(captured)
    await serve_one_request(tmp_path)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]
    assert len(access) == 1
    assert access[0]["msg"] == "GET /v2/some/repo/tags/list 404"
    assert access[0]["request_id"] == "req-42"
    assert access[0]["user_agent"] == "t/1"
    assert access[0]["service"] == "registry"
    assert isinstance(access[0]["duration_ms"], float)
    traces = [line for line in lines if line["logger"].startswith("entrepot.storage")]
    assert traces, lines  # storage calls traced at debug level...
    assert all(line["request_id"] == "req-42" for line in traces)  # ...with the id


async def test_text_lines_and_no_storage_traces_at_info(
    captured: io.StringIO, tmp_path: Path
) -> None:
    logs.configure("info", "text", {"env": "test"})
    point_at(captured)
    await serve_one_request(tmp_path)
    ours = [line for line in captured.getvalue().splitlines() if " entrepot" in line]
    assert len(ours) == 1, ours  # the access line, and no storage trace
    line = ours[0]
    assert " info entrepot.access: GET /v2/some/repo/tags/list 404 " in line
    assert "request_id=req-42" in line
    assert "env=test" in line
