"""host/inflight.InFlight: what a server's stop waits for (handlers with an end) and what it ends
(followers). The servers' real stops are tests/e2e/test_api_stop.py and test_registry_stop.py."""

from __future__ import annotations

import asyncio

from dockerbank.host.inflight import InFlight


def test_settled_waits_for_handlers_but_not_for_followers():
    async def main() -> None:
        in_flight = InFlight()
        assert await in_flight.settled(0.01)              # idle: settled at once
        in_flight.enter()
        assert not await in_flight.settled(0.05)          # a handler runs: not within the timeout
        follower = asyncio.ensure_future(asyncio.Event().wait())
        in_flight.enter()
        in_flight.follow(follower)                        # follows from now on: no longer counted
        assert in_flight.count == 1
        asyncio.get_running_loop().call_later(0.05, in_flight.leave)
        assert await in_flight.settled(5)                 # the handler with an end finished
        assert in_flight.end_streams() == 1
        await asyncio.sleep(0)
        assert follower.cancelled()
        in_flight.unfollow(follower)                      # the middleware's finally: nothing left
        assert in_flight.end_streams() == 0 and in_flight.count == 0

    asyncio.run(main())
