#!/usr/bin/python3
"""Python Kafka clients for eddy's interop suite.

Usage: pyclient.py CLIENT MODE --brokers B --topic T --count N [--group G]
  CLIENT: confluent (confluent-kafka-python, librdkafka) or kafka-python
  MODE:   produce  reads "key<TAB>value" lines from stdin, produces them with
                   acks=all (idempotently with --idempotent) and prints one
                   JSON object per acknowledged record
          consume  joins group G, reads N records from the earliest offset,
                   commits synchronously and prints one JSON object per record
          transact (confluent only) joins group G on topic --input with
                   read_committed, reads N records, and in one transaction of
                   --transactional-id produces each to T with its value
                   prefixed by "--tag -", sends the consumer's positions with
                   send_offsets_to_transaction and commits (or aborts with
                   --abort); prints one JSON object per produced record
Every printed object is {"partition", "offset", "key", "value"}. Exits
non-zero on any error or when --timeout seconds pass.
"""

import argparse
import json
import sys
import time


def out(partition, offset, key, value):
    print(json.dumps({"partition": partition, "offset": offset,
                      "key": key.decode() if key is not None else "",
                      "value": value.decode() if value is not None else ""}))


def read_input():
    recs = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        k, v = line.split("\t", 1)
        recs.append((k.encode(), v.encode()))
    return recs


def confluent_produce(a):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": a.brokers, "acks": "all",
                  "enable.idempotence": a.idempotent, "linger.ms": 5,
                  "compression.type": a.compression})
    acked, errors = [], []

    def done(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for k, v in read_input():
        while True:
            try:
                p.produce(a.topic, key=k, value=v, on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(a.timeout)
    if left or errors:
        sys.exit("confluent produce: %d undelivered, errors: %s" % (left, errors[:5]))
    for r in acked:
        out(*r)


def confluent_consume(a):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 10000})
    c.subscribe([a.topic])
    n, deadline = 0, time.time() + a.timeout
    while n < a.count:
        if time.time() > deadline:
            sys.exit("confluent consume: timed out after %d of %d records" % (n, a.count))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            sys.exit("confluent consume: %s" % m.error())
        out(m.partition(), m.offset(), m.key(), m.value())
        n += 1
    c.commit(asynchronous=False)
    c.close()


def confluent_transact(a):
    from confluent_kafka import Consumer, Producer
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed",
                  "session.timeout.ms": 10000})
    c.subscribe([a.input])
    got, deadline = [], time.time() + a.timeout
    while len(got) < a.count:
        if time.time() > deadline:
            sys.exit("confluent transact: timed out after %d of %d records" % (len(got), a.count))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            sys.exit("confluent transact: consume: %s" % m.error())
        got.append((m.key(), m.value()))

    p = Producer({"bootstrap.servers": a.brokers, "transactional.id": a.transactional_id,
                  "linger.ms": 5, "transaction.timeout.ms": 30000})
    acked, errors = [], []

    def done(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    p.init_transactions(a.timeout)
    p.begin_transaction()
    for k, v in got:
        p.produce(a.topic, key=k, value=a.tag.encode() + b"-" + v, on_delivery=done)
        p.poll(0)
    left = p.flush(a.timeout)
    if left or errors:
        sys.exit("confluent transact: %d undelivered, errors: %s" % (left, errors[:5]))
    p.send_offsets_to_transaction(c.position(c.assignment()),
                                  c.consumer_group_metadata(), a.timeout)
    if a.abort:
        p.abort_transaction(a.timeout)
    else:
        p.commit_transaction(a.timeout)
    c.close()
    for r in acked:
        out(*r)


def kafkapython_produce(a):
    from kafka import KafkaProducer
    recs = read_input()
    extra = {"enable_idempotence": True} if a.idempotent else {}
    p = KafkaProducer(bootstrap_servers=a.brokers, acks="all", linger_ms=5,
                      compression_type=None if a.compression == "none" else a.compression,
                      **extra)
    futures = [p.send(a.topic, key=k, value=v) for k, v in recs]
    p.flush(timeout=a.timeout)
    for f, (k, v) in zip(futures, recs):
        md = f.get(timeout=a.timeout)
        out(md.partition, md.offset, k, v)
    p.close()


def kafkapython_consume(a):
    from kafka import KafkaConsumer
    c = KafkaConsumer(a.topic, bootstrap_servers=a.brokers, group_id=a.group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000)
    n, deadline = 0, time.time() + a.timeout
    while n < a.count:
        if time.time() > deadline:
            sys.exit("kafka-python consume: timed out after %d of %d records" % (n, a.count))
        for _, msgs in c.poll(timeout_ms=500).items():
            for m in msgs:
                out(m.partition, m.offset, m.key, m.value)
                n += 1
    c.commit()
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("client", choices=["confluent", "kafka-python"])
    ap.add_argument("mode", choices=["produce", "consume", "transact"])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--group", default="")
    ap.add_argument("--compression", default="none")
    ap.add_argument("--timeout", type=float, default=45)
    ap.add_argument("--idempotent", action="store_true",
                    help="enable.idempotence=true (kafka-python: enable_idempotence)")
    ap.add_argument("--input", default="", help="transact: the topic to consume")
    ap.add_argument("--transactional-id", default="")
    ap.add_argument("--tag", default="txn")
    ap.add_argument("--abort", action="store_true",
                    help="transact: abort instead of commit")
    a = ap.parse_args()
    if a.mode == "transact" and a.client != "confluent":
        sys.exit("transact: only the confluent client")
    fn = {("confluent", "produce"): confluent_produce,
          ("confluent", "consume"): confluent_consume,
          ("confluent", "transact"): confluent_transact,
          ("kafka-python", "produce"): kafkapython_produce,
          ("kafka-python", "consume"): kafkapython_consume}[(a.client, a.mode)]
    fn(a)


if __name__ == "__main__":
    main()
