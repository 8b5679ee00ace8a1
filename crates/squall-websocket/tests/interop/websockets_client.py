# Python's `websockets` as a client of squall's echo server: text, binary and a large
# message (compressed when the server agrees), a ping, and a close handshake.
import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url):
    async with connect(url, max_size=2**24, ping_interval=None) as ws:
        for msg in ["hello", b"\x00\x01binary", "\u00e9" * 5000, ""]:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert got == msg, (got[:20], msg[:20])
        pong = await ws.ping(b"x")
        await asyncio.wait_for(pong, 10)
        await ws.close(1000, "bye")
    assert ws.close_code == 1000, ws.close_code
    print("ok", ws.response.headers.get("Sec-WebSocket-Extensions"))


asyncio.run(main(sys.argv[1]))
