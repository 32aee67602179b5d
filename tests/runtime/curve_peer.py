"""An intruder for the CURVE test: subscribe to a node's tcp:// output for a while and print how many frames came.

    python tests/runtime/curve_peer.py ENDPOINT SECONDS [SERVER.key CLIENT.key_secret]

Without keys it connects in the clear; with keys, as a CURVE client (whose key the publisher may not authorize).
"""

from __future__ import annotations

import sys
import time

import zmq
import zmq.auth


def main(endpoint: str, seconds: float, server_key: str = "", client_secret: str = "") -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    if server_key:
        sock.setsockopt(zmq.CURVE_SERVERKEY, zmq.auth.load_certificate(server_key)[0])
        public, secret = zmq.auth.load_certificate(client_secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.connect(endpoint)
    frames, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000)):
            sock.recv_multipart()
            frames += 1
    sock.close()
    ctx.term()
    return frames


if __name__ == "__main__":
    print(main(sys.argv[1], float(sys.argv[2]), *sys.argv[3:]))
