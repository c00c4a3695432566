"""Telemetry messages (versioned JSON) and the outbox that holds them while the node is offline.

Messages are built off the per-sample path. The outbox is bounded: when full, the oldest
heartbeat is dropped first, then the oldest message, and every drop is counted and reported in the
next heartbeat, so no loss is silent.
"""

import json

VERSION = 1


def detection(node_id, seq, unix_t, uptime_ms, event, location=None):
    msg = {"v": VERSION, "type": "detection", "node": node_id, "seq": seq, "t": unix_t, "uptime_ms": uptime_ms}
    for key in ("onset_s", "pga_gal", "pgv_cms", "cav_cms", "score", "duration_s"):
        if key in event:
            msg[key] = event[key]
    if location:
        msg["lat"] = location["lat"]
        msg["lon"] = location["lon"]
    return msg


def heartbeat(node_id, unix_t, uptime_ms, status):
    msg = {"v": VERSION, "type": "heartbeat", "node": node_id, "t": unix_t, "uptime_ms": uptime_ms}
    msg.update(status)
    return msg


def parse(data):
    """Decode a message from bytes; raise ValueError naming what is wrong."""
    try:
        msg = json.loads(data)
    except ValueError:
        raise ValueError("telemetry: not JSON")
    if not isinstance(msg, dict):
        raise ValueError("telemetry: not an object")
    if msg.get("v") != VERSION:
        raise ValueError("telemetry: unsupported version %r" % msg.get("v"))
    if msg.get("type") not in ("detection", "heartbeat"):
        raise ValueError("telemetry: unknown type %r" % msg.get("type"))
    if not isinstance(msg.get("node"), str):
        raise ValueError("telemetry: missing node")
    return msg


class Outbox:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.dropped = 0

    def put(self, msg):
        if len(self.items) >= self.capacity:
            victim = 0
            for i in range(len(self.items)):
                if self.items[i].get("type") == "heartbeat":
                    victim = i
                    break
            self.items.pop(victim)
            self.dropped += 1
        self.items.append(msg)

    def flush(self, send):
        """Send queued messages in order with send(bytes); stop at the first OSError (offline)."""
        sent = 0
        while self.items:
            try:
                send(json.dumps(self.items[0]).encode())
            except OSError:
                break
            self.items.pop(0)
            sent += 1
        return sent
