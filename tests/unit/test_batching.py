from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from router.batching import Batcher


async def test_concurrent_submits_share_batches_and_keep_order() -> None:
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        await gate.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=3)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(7)]
    await asyncio.sleep(0)  # let every submit enqueue; no time passes
    gate.set()
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(7)]
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failing_batch_fails_only_its_callers() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        if 1 in items:
            raise RuntimeError("store down")
        return list(items)

    batcher: Batcher[int, int] = Batcher(run, max_batch=1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert results[0] == 0
    assert isinstance(results[1], RuntimeError)
    assert results[2] == 2


async def test_close_waits_for_the_batch_in_flight() -> None:
    done: list[int] = []

    async def run(items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0)
        done.extend(items)
        return list(items)

    batcher: Batcher[int, int] = Batcher(run, max_batch=10)
    task = asyncio.create_task(batcher.submit(5))
    await asyncio.sleep(0)
    await batcher.close()
    assert done == [5]
    assert await task == 5


async def test_a_cancelled_caller_does_not_break_the_batch() -> None:
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        await gate.wait()
        return list(items)

    batcher: Batcher[int, int] = Batcher(run, max_batch=10)
    first = asyncio.create_task(batcher.submit(1))
    second = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == 2
