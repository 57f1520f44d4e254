"""A burst of refresh requests for one binding costs at most two refreshes, and none is lost."""

from __future__ import annotations

import asyncio

from rolesanywhere_operator.reconcile import CONCURRENCY, Reconciler


class GateKube:
    """Answers the binding GET only when the test opens the gate; counts the refreshes that started."""

    def __init__(self) -> None:
        self.reads = 0
        self.gate = asyncio.Event()

    async def get(self, api_path: str, *, namespace: str | None = None):
        self.reads += 1
        await self.gate.wait()
        # the binding is gone: the refresh ends after its read


def test_a_burst_of_refreshes_coalesces_into_the_running_one_and_one_more():
    async def scenario() -> int:
        kube = GateKube()
        reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)
        first = asyncio.create_task(reconciler.refresh("shop", "s3-reader"))
        await asyncio.sleep(0)  # the first refresh is now reading
        burst = [asyncio.create_task(reconciler.refresh("shop", "s3-reader")) for _ in range(50)]
        other = asyncio.create_task(reconciler.refresh("shop", "other-binding"))
        await asyncio.sleep(0)
        kube.gate.set()
        await asyncio.gather(first, *burst, other)
        return kube.reads

    # s3-reader: the running refresh, plus one that started after it and saw the burst; other: its own.
    assert asyncio.run(scenario()) == 3


def test_a_refresh_requested_after_the_waiting_one_started_reading_runs_again():
    async def scenario() -> int:
        kube = GateKube()
        kube.gate.set()
        reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)
        for _ in range(3):
            await reconciler.refresh("shop", "s3-reader")  # one after the other: none is skipped
        return kube.reads

    assert asyncio.run(scenario()) == 3


def test_a_refresh_cancelled_while_waiting_does_not_stop_later_ones():
    """The periodic resync gives up on a refresh that hangs (asyncio.wait_for): if that one was waiting for
    the binding's lock, later refreshes must still run, not return as if it were still waiting."""

    async def scenario() -> int:
        kube = GateKube()
        reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)
        running = asyncio.create_task(reconciler.refresh("shop", "s3-reader"))
        await asyncio.sleep(0)  # reading, behind the gate
        waiting = asyncio.create_task(reconciler.refresh("shop", "s3-reader"))
        await asyncio.sleep(0)
        waiting.cancel()
        kube.gate.set()
        await running
        await asyncio.gather(waiting, return_exceptions=True)
        await reconciler.refresh("shop", "s3-reader")
        return kube.reads

    assert asyncio.run(scenario()) == 2  # the running one, and the one after the cancelled wait


def test_refreshes_requested_one_by_one_within_the_gathering_time_share_one():
    """Pods created one at a time: each pod's event asks for a refresh after the previous one finished."""

    async def scenario() -> int:
        kube = GateKube()
        kube.gate.set()
        reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)
        gathering = asyncio.create_task(reconciler.refresh("shop", "s3-reader", gather=0.05))
        for _ in range(5):
            await asyncio.sleep(0.001)
            await reconciler.refresh("shop", "s3-reader", gather=0.05)  # returns at once: one is gathering
        await gathering
        return kube.reads

    assert asyncio.run(scenario()) == 1


def test_refreshes_of_many_bindings_run_a_bounded_number_at_a_time():
    """A thousand bindings created together must not queue a thousand requests in the API client."""

    async def scenario() -> tuple[int, int]:
        kube = GateKube()
        reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)
        refreshes = [asyncio.create_task(reconciler.refresh("shop", f"b{i}")) for i in range(3 * CONCURRENCY)]
        await asyncio.sleep(0.01)
        reading = kube.reads
        kube.gate.set()
        await asyncio.gather(*refreshes)
        return reading, kube.reads

    assert asyncio.run(scenario()) == (CONCURRENCY, 3 * CONCURRENCY)
