#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ from tests/fixtures/ (the captured nginx requests and
uWSGI subscription packets, and the subscription test key). Run it again after changing a
fixture or a target's input layout; it needs openssl for the re-signed packets. The seeds are
committed, so a fuzz run needs neither."""

import shutil
import struct
import subprocess
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "tests" / "fixtures"
CORPUS = FUZZ / "corpus"
PRIVATE_KEY = FIXTURES / "subscription-test-key.pem"
PUBLIC_KEY = FIXTURES / "subscription-test-key.pub.pem"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def var(key, value):
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


def packet(modifier1, modifier2, block):
    return struct.pack("<BHB", modifier1, len(block), modifier2) + block


def signed_part(pkt):
    """The vars of a signed packet up to its sign var, and the header's modifier2."""
    block, offset = pkt[4:], 0
    while offset < len(block):
        (klen,) = struct.unpack_from("<H", block, offset)
        key = block[offset + 2 : offset + 2 + klen]
        (vlen,) = struct.unpack_from("<H", block, offset + 2 + klen)
        if key == b"sign":
            return block[:offset], pkt[3]
        offset += 4 + klen + vlen
    raise ValueError("no sign var")


def resign(pkt, digest):
    message, modifier2 = signed_part(pkt)
    signature = subprocess.run(
        ["openssl", "dgst", f"-{digest}", "-sign", str(PRIVATE_KEY)],
        input=message,
        capture_output=True,
        check=True,
    ).stdout
    return packet(224, modifier2, message + var(b"sign", signature))


def openssl_key(*args):
    return subprocess.run(
        ["openssl", "rsa", "-pubin", "-in", str(PUBLIC_KEY), *args],
        capture_output=True,
        check=True,
    ).stdout


def write(target, seeds):
    out = CORPUS / target
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def main():
    get, post = fixture("nginx-get.bin"), fixture("nginx-post.bin")
    subscribe, unsubscribe = fixture("uwsgi-subscribe.bin"), fixture("uwsgi-unsubscribe.bin")
    signed = fixture("uwsgi-subscribe-signed.bin")
    signed_unsubscribe = fixture("uwsgi-unsubscribe-signed.bin")

    (post_vars,) = struct.unpack_from("<H", post, 1)
    write(
        "protocol_packet",
        {
            "nginx-get": get,
            # Header, vars and the first 64 bytes of the body: the whole capture is 10 KiB.
            "nginx-post-head": post[: 4 + post_vars + 64],
            "uwsgi-subscribe": subscribe,
            "uwsgi-subscribe-signed": signed,
            "empty-vars": packet(0, 0, b""),
            # As an encoding recipe: one field of 255 bytes, repeated past the 16-bit limit.
            "long-field": b"\x00\x00\xff" + b"x" * 255,
        },
    )

    later_wins = packet(
        224,
        0,
        var(b"key", b"example.com")
        + var(b"address", b"127.0.0.1:1")
        + var(b"backup", b"1")
        + var(b"address", b"127.0.0.1:2")
        + var(b"cores", b"99999999999")
        + var(b"notify", b"/run/uwsgi/notify.sock")
        + var(b"unix", b"1700000000"),
    )
    write(
        "subscription_packet",
        {
            "uwsgi-subscribe": subscribe,
            "uwsgi-unsubscribe": unsubscribe,
            "uwsgi-subscribe-signed": signed,
            "uwsgi-unsubscribe-signed": signed_unsubscribe,
            "later-vars-win": later_wins,
        },
    )

    # subscription_signature: selector (digest | source * 4), key length (u16 LE), key, datagram.
    def sig_seed(digest, source, key, datagram):
        return bytes([digest | source * 4]) + struct.pack("<H", len(key)) + key + datagram

    modulus = bytes.fromhex(openssl_key("-noout", "-modulus").decode().strip().split("=")[1])
    exponent = (65537).to_bytes(3, "big")
    write(
        "subscription_signature",
        {
            "test-key-sha1-subscribe": sig_seed(0, 0, b"", signed),
            "test-key-sha1-unsubscribe": sig_seed(0, 0, b"", signed_unsubscribe),
            "test-key-unsigned": sig_seed(0, 0, b"", subscribe),
            "test-key-sha256": sig_seed(1, 0, b"", resign(signed, "sha256")),
            "test-key-sha384": sig_seed(2, 0, b"", resign(signed, "sha384")),
            "test-key-sha512": sig_seed(3, 0, b"", resign(signed, "sha512")),
            "pem-file": sig_seed(0, 1, PUBLIC_KEY.read_bytes(), signed),
            "spki-der": sig_seed(0, 2, openssl_key("-outform", "DER"), signed),
            "pkcs1-der": sig_seed(
                0, 3, openssl_key("-RSAPublicKey_out", "-outform", "DER"), signed
            ),
            "components": sig_seed(0, 4, bytes([len(exponent)]) + exponent + modulus, signed),
        },
    )


if __name__ == "__main__":
    main()
