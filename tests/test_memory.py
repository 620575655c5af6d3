"""Giving freed memory back: when `IdleTrim` trims, and the real call."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path

import httpx
import pytest

from entrepot.api import App, Context
from entrepot.config import embedded_default
from entrepot.memory import IdleTrim, malloc_trim, trim_now
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry
from entrepot.wiring import build_app

DELAY = 0.05
# Long enough for the event loop to run a timer due after DELAY.
SETTLE = DELAY * 4


class Count:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def test_trims_once_after_the_last_request_and_a_quiet_delay() -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    idle.started()
    idle.started()
    idle.finished()
    await asyncio.sleep(SETTLE)
    assert trims.calls == 0, "trimmed while a request was still running"
    idle.finished()
    assert trims.calls == 0, "trimmed at once, not after the delay"
    await asyncio.sleep(SETTLE)
    assert trims.calls == 1
    await asyncio.sleep(SETTLE)
    assert trims.calls == 1, "trimmed again with no request in between"


async def test_requests_in_quick_succession_put_the_trim_off() -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    for _ in range(8):  # each shorter than the delay apart
        idle.started()
        idle.finished()
        await asyncio.sleep(DELAY / 4)
        assert trims.calls == 0
    await asyncio.sleep(SETTLE)
    assert trims.calls == 1


async def test_each_quiet_spell_after_work_trims_again() -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    for expected in (1, 2):
        idle.started()
        idle.finished()
        await asyncio.sleep(SETTLE)
        assert trims.calls == expected


async def test_a_request_running_when_the_timer_fires_postpones_the_trim() -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    idle.started()
    idle.finished()  # arms the timer
    idle.started()
    await asyncio.sleep(SETTLE)
    assert trims.calls == 0
    idle.finished()
    await asyncio.sleep(SETTLE)
    assert trims.calls == 1


async def test_close_disarms_the_timer() -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    idle.started()
    idle.finished()
    idle.close()
    await asyncio.sleep(SETTLE)
    assert trims.calls == 0


async def test_the_app_counts_every_request_including_failed_ones(tmp_path: Path) -> None:
    trims = Count()
    idle = IdleTrim(trims, DELAY)
    app = App(Context(Registry(FilesystemDriver(tmp_path))), idle)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        assert (await http.get("/v2/")).status_code == 200
        assert (await http.get("/v2/Bad Name/tags/list")).status_code == 400
        assert (await http.get("/v2/a/blobs/uploads/nope")).status_code == 404
    assert trims.calls == 0
    await asyncio.sleep(SETTLE)
    assert trims.calls == 1  # all three finished, then one trim


def test_the_served_app_trims_where_the_c_library_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the embedded default's storage is ./data
    glibc = platform.libc_ver()[0] == "glibc"
    assert (build_app(embedded_default()).idle is not None) == glibc


def test_the_c_library_call_runs() -> None:
    trim = malloc_trim()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None
        return
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released
    trim_now()
