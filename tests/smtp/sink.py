"""A real SMTP server for the alert tests (aiosmtpd): every message received is parsed with
Python's email package and appended to a JSON-lines file (envelope, headers, text and HTML
parts), so the Rust tests can read exactly what a mail client would.

    python3 tests/smtp/sink.py --port 2525 --out messages.jsonl [--cert c.pem --key k.pem]

With --cert/--key the server offers and requires STARTTLS; add --implicit for implicit TLS
(SMTPS) instead. Prints "READY <port>" once listening.
"""

import argparse
import email
import email.policy
import json
import ssl
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit", action="store_true")
    args = p.parse_args()
    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs = {"ssl_context": ctx} if args.implicit else {"tls_context": ctx, "require_starttls": True}
    controller = Controller(Sink(args.out), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print(f"READY {args.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
