"""Each page says which node answered: NODE_NAME, set per uWSGI instance by run.sh."""
import html
import os
import time

from django.http import HttpResponse

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>uwsgi-router demo: {node}</title>
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<main>
<p class="small">This page was rendered by</p>
<h1 id="node" data-node="{node}">{node}</h1>
<p>uWSGI worker pid {pid}, request {path}</p>
<p>nginx passed the request to <b>routerd</b>, which picked this node. Reload to see where
the next one goes; <code>routerctl drain {node_id}</code> takes this node out of rotation.</p>
<p class="small">The stylesheet of this page was served by nginx itself, from
<code>deploy/demo/static/</code>. Plain text: <a href="/echo/">/echo/</a>.
A slow page for load tests: <a href="/slow/?ms=100">/slow/?ms=100</a>.</p>
</main>
</body>
</html>
"""


def node_name():
    """This uWSGI instance's name."""
    return os.environ.get("NODE_NAME", "unnamed")


def index(request):
    """An HTML page naming the node."""
    node = html.escape(node_name())
    page = PAGE.format(
        node=node,
        node_id=html.escape(os.environ.get("NODE_ID", node)),
        pid=os.getpid(),
        path=html.escape(request.path),
    )
    return HttpResponse(page, content_type="text/html; charset=utf-8")


def echo(request):
    """Plain text, one key=value a line: easy to read with curl and grep."""
    lines = [
        f"node={node_name()}",
        f"pid={os.getpid()}",
        f"method={request.method}",
        f"path={request.path}",
        f"host={request.META.get('HTTP_HOST', '')}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def slow(request):
    """Takes ?ms=N milliseconds (at most 5000), as a page doing real work would."""
    try:
        ms = min(max(int(request.GET.get("ms", "100")), 0), 5000)
    except ValueError:
        ms = 100
    time.sleep(ms / 1000)
    return HttpResponse(f"node={node_name()}\nms={ms}\n", content_type="text/plain")
