"""Views that let a test see what reached the node and which node answered."""
import os
import zlib

from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

CHUNK = 64 * 1024


@csrf_exempt
def echo(request):
    """Describe the request: method, path, host, body size and CRC-32, this node's name, the
    client's address and port, then every HTTP_* var as `HTTP_NAME=value`."""
    length, crc = read_body(request)
    lines = [
        f"method={request.method}",
        f"path={request.path}",
        f"host={request.META.get('HTTP_HOST', '')}",
        f"body_length={length}",
        f"body_crc32={crc:08x}",
        f"node={os.environ.get('NODE_NAME', '')}",
        f"query={request.META.get('QUERY_STRING', '')}",
        f"remote_addr={request.META.get('REMOTE_ADDR', '')}",
        f"remote_port={request.META.get('REMOTE_PORT', '')}",
    ]
    lines += [f"{k}={v}" for k, v in sorted(request.META.items()) if k.startswith("HTTP_")]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def read_body(request):
    """Read the whole body in chunks, so a large upload never sits in memory at once."""
    length = 0
    crc = 0
    while True:
        chunk = request.read(CHUNK)
        if not chunk:
            return length, crc
        length += len(chunk)
        crc = zlib.crc32(chunk, crc)


def stream(request, size):
    """Stream exactly `size` bytes of a known pattern (byte i is i % 251) in 64 KiB chunks."""
    response = StreamingHttpResponse(pattern(size), content_type="application/octet-stream")
    response["X-Node"] = os.environ.get("NODE_NAME", "")
    return response


def pattern(size):
    """Yield the pattern; 251 is prime, so a dropped or repeated chunk shifts it visibly."""
    period = bytes(range(251)) * ((CHUNK // 251) + 2)
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        offset = sent % 251
        yield period[offset : offset + n]
        sent += n


def fail(request):
    """Answer 500, as a view that raised would, naming this node."""
    body = f"node={os.environ.get('NODE_NAME', '')}\n"
    return HttpResponse(body, status=500, content_type="text/plain")
