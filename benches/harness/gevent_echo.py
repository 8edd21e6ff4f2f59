"""gevent's StreamServer echo peer: one greenlet per connection, 4 KiB reads, TCP_NODELAY.

usage: python gevent_echo.py PORT     (benches/peers.sh runs it in its gevent venv)
"""
import socket
import sys

from gevent.server import StreamServer


def echo(sock, _addr):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass
    finally:
        sock.close()


def main():
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit("usage: gevent_echo.py PORT")
    addr = ("127.0.0.1", int(sys.argv[1]))
    server = StreamServer(addr, echo, backlog=1024)
    print("gevent echo listening on %s:%d" % addr, file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
