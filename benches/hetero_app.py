"""The WSGI app of the heterogeneous-pool benchmark (`bench --only hetero`).

Each request sleeps SLEEP_MS milliseconds (a node's service time: 2 on a normal node, 20 on the
slow one), then answers `hello from <NODE_NAME>`, so the load generator can count which node
served it. Both come from uWSGI's `--env NODE_NAME=... --env SLEEP_MS=...`.
"""

import os
import time

NAME = os.environ.get("NODE_NAME", "node").encode()
SLEEP = float(os.environ.get("SLEEP_MS", "0")) / 1000.0
BODY = b"hello from " + NAME
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    if SLEEP > 0:
        time.sleep(SLEEP)
    start_response("200 OK", HEADERS)
    return [BODY]
