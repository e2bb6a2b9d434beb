"""Instructions per request that the hostile-client limits add, measured with callgrind (wall
time on a shared, loaded machine says nothing).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.server_limits_cost guarded 2000

The protocol (uvicorn's httptools one, or PlayGate's guarded subclass) is driven in process
through a transport that only counts bytes, on asyncio's loop, with a trivial ASGI app: one
keep-alive request after another. Compare totals for 0 and N requests of each variant.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from playgate.serving import ServerLimits, guarded_protocol

REQUEST = b"GET /videos/demo/seg.ts HTTP/1.1\r\nHost: edge\r\nUser-Agent: bench\r\n\r\n"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class CountingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 50000)}.get(name)

    def write(self, data: Any) -> None:
        self.sent += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def drive(variant: str, requests: int) -> None:
    config = Config(app, access_log=False, log_level="warning", lifespan="off")
    config.load()
    kind = guarded_protocol(ServerLimits()) if variant == "guarded" else HttpToolsProtocol
    protocol = kind(config=config, server_state=ServerState(), app_state={})
    transport = CountingTransport()
    protocol.connection_made(transport)
    for _ in range(requests):
        protocol.data_received(REQUEST)
        while not protocol.cycle.response_complete:
            await asyncio.sleep(0)
    assert not transport.closing
    protocol.connection_lost(None)


if __name__ == "__main__":
    asyncio.run(drive(sys.argv[1], int(sys.argv[2])))
