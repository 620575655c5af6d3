"""Concurrent catalog walks: identical requests share a walk, in rounds, and
no caller gets the answer of a walk that began before it called."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence

import pytest

from entrepot.storage import paths
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.registry import Registry


class GatedDriver(InMemoryDriver):
    """Counts catalog walks (listings of the repositories root) and can hold
    every directory listing until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.walks = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def list(self, path: str) -> list[str]:
        if path == paths.REPOSITORIES:
            self.walks += 1
            if self.fail is not None:
                raise self.fail
        await self.gate.wait()
        return await super().list(path)

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        await self.gate.wait()
        return await super().list_many(paths)


async def make_repository(driver: InMemoryDriver, name: str) -> None:
    await driver.put_content(f"{paths.REPOSITORIES}/{name}/_manifests/tags/x/current/link", b"x")


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_concurrent_identical_calls_share_a_walk() -> None:
    driver = GatedDriver()
    for i in range(30):
        await make_repository(driver, f"r/{i:02d}")
    registry = Registry(driver)
    expected = [f"r/{i:02d}" for i in range(30)]

    answers = await asyncio.gather(*(registry.repositories(100) for _ in range(50)))

    assert all(answer == expected for answer in answers)
    # All arrive before the first round starts: one walk serves them all.
    assert driver.walks == 1
    # Each caller has its own list: changing one changes no other.
    answers[0].append("mine")
    assert answers[1] == expected


async def test_a_caller_never_gets_a_walk_begun_before_it_called() -> None:
    driver = GatedDriver()
    await make_repository(driver, "a/one")
    registry = Registry(driver)

    driver.gate.clear()
    early = asyncio.create_task(registry.repositories(100))
    await settle()  # its walk has begun (it waits on the gate)
    assert driver.walks == 1
    await make_repository(driver, "b/two")  # made after that walk began
    late = [asyncio.create_task(registry.repositories(100)) for _ in range(10)]
    await settle()
    driver.gate.set()

    assert sorted(await early) in (["a/one"], ["a/one", "b/two"])
    for task in late:
        # Never the early walk's answer: a second round, shared by all ten.
        assert await task == ["a/one", "b/two"]
    assert driver.walks == 2


async def test_different_pages_are_different_walks() -> None:
    driver = GatedDriver()
    for name in ("a", "b", "c", "d"):
        await make_repository(driver, name)
    registry = Registry(driver)

    first, after_b, all_of_them = await asyncio.gather(
        registry.repositories(2), registry.repositories(10, "b"), registry.repositories()
    )

    assert (first, after_b, all_of_them) == (["a", "b"], ["c", "d"], ["a", "b", "c", "d"])
    assert driver.walks == 3


async def test_an_error_reaches_every_caller_of_its_round_only() -> None:
    driver = GatedDriver()
    await make_repository(driver, "a")
    registry = Registry(driver)
    driver.fail = OSError("disk gone")

    results = await asyncio.gather(
        *(registry.repositories(10) for _ in range(5)), return_exceptions=True
    )

    assert all(isinstance(r, OSError) and str(r) == "disk gone" for r in results)
    driver.fail = None
    assert await registry.repositories(10) == ["a"]  # a new round, not the failed one


async def test_a_caller_that_goes_away_does_not_stop_the_others() -> None:
    driver = GatedDriver()
    await make_repository(driver, "a")
    registry = Registry(driver)

    driver.gate.clear()
    leaving = asyncio.create_task(registry.repositories(10))
    staying = asyncio.create_task(registry.repositories(10))
    await settle()
    leaving.cancel()
    await settle()
    driver.gate.set()

    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await staying == ["a"]
    assert driver.walks == 1
