# Tornado's websocket_connect as a client of squall's echo server.
import sys

from tornado import ioloop, websocket


async def main(url):
    ws = await websocket.websocket_connect(url, compression_options={})
    for msg in ["hello", b"\x00\x01binary", "\u00e9" * 5000]:
        await ws.write_message(msg, binary=isinstance(msg, bytes))
        got = await ws.read_message()
        assert got == msg, (got[:20], msg[:20])
    ws.close(1000, "bye")
    assert await ws.read_message() is None
    assert ws.close_code == 1000, ws.close_code
    print("ok")


ioloop.IOLoop.current().run_sync(lambda: main(sys.argv[1]), timeout=30)
