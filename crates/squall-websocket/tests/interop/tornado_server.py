# Tornado's WebSocketHandler as an echo server for squall's client; prints its port.
from tornado import httpserver, ioloop, netutil, web, websocket


class Echo(websocket.WebSocketHandler):
    def get_compression_options(self):
        return {}

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


sockets = netutil.bind_sockets(0, "127.0.0.1")
server = httpserver.HTTPServer(web.Application([(r"/", Echo)]))
server.add_sockets(sockets)
print("PORT", sockets[0].getsockname()[1], flush=True)
ioloop.IOLoop.current().start()
