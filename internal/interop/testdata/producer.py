#!/usr/bin/python3
"""confluent-kafka (librdkafka) producer for evproxy's interop tests.

Reads records from a JSON lines file written by the Go test, one object a
line: {"k": base64 or null, "v": base64, "h": [[name, base64 or null]],
"p": partition or -1}. Produces them in file order and prints
"ok <index> <partition>" for each delivered record, then "delivered <n>".
Errors go to stderr; the exit status is 1 when any record failed.

Run it with the Debian interpreter (/usr/bin/python3), which has the
python3-confluent-kafka package.
"""

import argparse
import base64
import json
import sys

from confluent_kafka import Producer


def b64(s):
    return None if s is None else base64.b64decode(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", required=True, help="JSON lines file")
    ap.add_argument("--codec", default="none")
    ap.add_argument("--acks", default="all")
    ap.add_argument("--idempotent", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--debug", default="", help="librdkafka debug contexts")
    args = ap.parse_args()

    with open(args.records, "rb") as f:
        records = [json.loads(line) for line in f if line.strip()]

    conf = {
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.codec,
        "acks": args.acks,
        "enable.idempotence": args.idempotent,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
    }
    if args.debug:
        conf["debug"] = args.debug
    producer = Producer(conf)

    delivered = 0
    failed = 0

    def report(index):
        def cb(err, msg):
            nonlocal delivered, failed
            if err is not None:
                failed += 1
                print(f"record {index}: {err}", file=sys.stderr)
                return
            delivered += 1
            print(f"ok {index} {msg.partition()}")
        return cb

    for i, r in enumerate(records):
        kwargs = {
            "value": b64(r["v"]),
            "key": b64(r["k"]),
            "on_delivery": report(i),
        }
        if r["h"]:
            kwargs["headers"] = [(name, b64(value)) for name, value in r["h"]]
        if r["p"] >= 0:
            kwargs["partition"] = r["p"]
        while True:
            try:
                producer.produce(args.topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)

    remaining = producer.flush(args.timeout)
    if remaining:
        print(f"{remaining} records still queued after {args.timeout}s", file=sys.stderr)
    print(f"delivered {delivered}")
    sys.stdout.flush()
    return 1 if failed or remaining else 0


if __name__ == "__main__":
    sys.exit(main())
