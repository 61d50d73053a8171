#!/usr/bin/env python3
"""sbstub: a small in-memory AMQP 1.0 broker for clawea's Service Bus contract tests.

It speaks just enough of the Azure Service Bus dialect of AMQP for the Go
azservicebus SDK (v1.11) to send, receive, settle, peek and dead-letter
messages against it. It is a test double, not an emulator: it proves that our
adapter drives the SDK correctly, not that Service Bus behaves this way.

What it does:
  * accepts plain-TCP connections with SASL ANONYMOUS (the SDK's
    UseDevelopmentEmulator=true mode);
  * answers claims-based-security put-token requests on "$cbs" (status 200,
    or 401 for entities named with --deny);
  * creates queues on first use; "<topic>/subscriptions/<name>" addresses
    are subscriptions, and a message sent to <topic> is copied to every
    subscription that has been attached at least once;
  * stores messages with per-entity sequence numbers and enqueue times and
    hands them out with the x-opt-sequence-number, x-opt-enqueued-time and
    (peek-lock) x-opt-locked-until annotations and a header delivery count;
  * peek-lock (receiver settles second) and receive-and-delete (pre-settled)
    links; lock tokens are derived from 16-byte delivery tags as the SDK
    expects;
  * outcomes: accepted = complete, rejected = dead-letter (reason and
    description from the com.microsoft:dead-letter error info become the
    DeadLetterReason/DeadLetterErrorDescription application properties),
    modified = abandon (delivery count + 1), released = back to the queue
    uncounted (and kept from the releasing link for a quarter second, so the
    SDK's release of surplus prefetched messages does not spin);
  * locks expire after --lock-seconds (delivery count + 1, message is
    available again; a late settlement gets com.microsoft:message-lock-lost);
  * a message abandoned or expired until its delivery count reaches
    --max-delivery-count is dead-lettered with reason MaxDeliveryCountExceeded;
  * dead-letter queues at "<entity>/$deadletterqueue";
  * "<entity>/$management" operations com.microsoft:peek-message,
    com.microsoft:renew-lock and com.microsoft:update-disposition; any other
    operation is answered with status 501;
  * honours drain requests and unpacks SendMessageBatch envelopes (found by
    sniffing: every data section is itself an encoded message, because the
    Python binding does not expose a delivery's message format);
  * entities named with --absent do not exist (attach fails with
    amqp:not-found);
  * faults: --refuse ENTITY=CONDITION refuses every attach to ENTITY with
    that AMQP error condition (e.g. com.microsoft:server-busy), and --hang
    ENTITY never answers an attach to ENTITY.

What it does not do: TLS, real authentication (any token is accepted),
sessions, deferral (a defer is refused with amqp:not-implemented),
scheduled messages, message expiry (TTL), duplicate detection, forwarding,
transactions, subscription filters or rules, partitions, the HTTPS
administration API, persistence. Entity names are case-insensitive.

Usage: sbstub.py --port N [--host 127.0.0.1] [--lock-seconds 60]
                 [--max-delivery-count 10] [--max-message-size 262144]
                 [--absent NAME]... [--deny NAME]...
                 [--refuse NAME=CONDITION]... [--hang NAME]...
                 [--exit-on-stdin-eof] [--verbose]
It prints "sbstub listening on HOST:PORT" once the socket is bound.
"""

import argparse
import os
import sys
import threading
import time
import uuid

from proton import (
    Array,
    Condition,
    Data,
    Delivery,
    Described,
    Endpoint,
    Handler,
    Link,
    Message,
    Terminus,
    UNDESCRIBED,
    int32,
    symbol,
    timestamp,
    uint,
    ulong,
)
from proton.reactor import Container

# Section descriptor codes of an AMQP 1.0 message (spec part 3.2).
HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA = 0x75
AMQP_SEQUENCE = 0x76
AMQP_VALUE = 0x77
FOOTER = 0x78
BODY_SECTIONS = (DATA, AMQP_SEQUENCE, AMQP_VALUE)

SECTION_NAMES = {
    "amqp:header:list": HEADER,
    "amqp:delivery-annotations:map": DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": MESSAGE_ANNOTATIONS,
    "amqp:properties:list": PROPERTIES,
    "amqp:application-properties:map": APPLICATION_PROPERTIES,
    "amqp:data:binary": DATA,
    "amqp:amqp-sequence:list": AMQP_SEQUENCE,
    "amqp:amqp-value:*": AMQP_VALUE,
    "amqp:footer:map": FOOTER,
}

# Annotations only the broker may set; incoming copies are dropped.
BROKER_ANNOTATIONS = (
    "x-opt-sequence-number",
    "x-opt-enqueued-time",
    "x-opt-locked-until",
    "x-opt-deadletter-source",
)

INCOMING_CREDIT = 500
TICK_SECONDS = 0.1
RELEASE_BACKOFF_SECONDS = 0.25
EXPIRED_TOKEN_MEMORY_SECONDS = 600
MANAGEMENT_SUFFIX = "/$management"
DEAD_LETTER_SUFFIX = "/$deadletterqueue"
SUBSCRIPTIONS_SEGMENT = "/subscriptions/"

VERBOSE = False


def log(*parts):
    if VERBOSE:
        print("sbstub: %.3f" % time.time(), *parts, file=sys.stderr, flush=True)


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------
# Message encoding helpers. Messages are kept as their encoded sections so the
# broker never changes the types of properties or the body it passes on.


def split_sections(raw):
    """Split an encoded message into (descriptor code, encoded bytes) pairs."""
    sections = []
    pos = 0
    while pos < len(raw):
        d = Data()
        used = d.decode(raw[pos:])
        if used <= 0:
            raise ValueError("cannot decode message section at offset %d" % pos)
        d.rewind()
        if d.next() != Data.DESCRIBED:
            raise ValueError("message section at offset %d is not described" % pos)
        d.enter()
        d.next()
        descriptor = d.get_object()
        d.exit()
        if isinstance(descriptor, int):
            code = int(descriptor)
        else:
            code = SECTION_NAMES.get(str(descriptor), -1)
        sections.append((code, raw[pos:pos + used]))
        pos += used
    return sections


def section_value(raw):
    d = Data()
    d.decode(raw)
    d.rewind()
    d.next()
    value = d.get_object()
    return value.value if isinstance(value, Described) else value


def encode_section(code, value):
    d = Data()
    d.put_object(Described(ulong(code), value))
    return d.encode()


def looks_like_message(blob):
    """True when blob starts with an encoded message section (00 53 70..78)."""
    return (
        isinstance(blob, (bytes, bytearray))
        and len(blob) >= 3
        and blob[0] == 0x00
        and blob[1] == 0x53
        and HEADER <= blob[2] <= FOOTER
    )


def as_text(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class Stored(object):
    """A message at rest in an entity."""

    def __init__(self, header, annotations, rest):
        self.header = header  # decoded header list, or None
        self.annotations = annotations  # dict of message annotations
        self.rest = rest  # [(code, raw)] properties, app properties, body, footer
        self.seq = 0
        self.enqueued = now_ms()
        self.count = 0  # failed delivery attempts (AMQP header delivery-count)
        self.backoff_link = None
        self.backoff_until = 0.0

    @classmethod
    def from_sections(cls, sections):
        header = None
        annotations = {}
        rest = []
        for code, raw in sections:
            if code == HEADER:
                value = section_value(raw)
                header = list(value) if isinstance(value, list) else None
            elif code == MESSAGE_ANNOTATIONS:
                value = section_value(raw)
                if isinstance(value, dict):
                    annotations = {
                        k: v for k, v in value.items() if str(k) not in BROKER_ANNOTATIONS
                    }
            elif code == DELIVERY_ANNOTATIONS:
                continue
            else:
                rest.append((code, raw))
        m = cls(header, annotations, rest)
        if header and len(header) > 4 and header[4] is not None:
            m.count = int(header[4])
        return m

    def copy(self):
        m = Stored(list(self.header) if self.header else None, dict(self.annotations), list(self.rest))
        m.count = self.count
        return m

    def app_properties(self):
        for code, raw in self.rest:
            if code == APPLICATION_PROPERTIES:
                value = section_value(raw)
                return dict(value) if isinstance(value, dict) else {}
        return {}

    def set_app_properties(self, props):
        encoded = (APPLICATION_PROPERTIES, encode_section(APPLICATION_PROPERTIES, props))
        for i, (code, _) in enumerate(self.rest):
            if code == APPLICATION_PROPERTIES:
                self.rest[i] = encoded
                return
        at = 0
        for i, (code, _) in enumerate(self.rest):
            if code == PROPERTIES:
                at = i + 1
        self.rest.insert(at, encoded)

    def encode(self, extra_annotations):
        header = list(self.header or [])
        while len(header) < 5:
            header.append(None)
        header[4] = uint(self.count)
        annotations = dict(self.annotations)
        annotations[symbol("x-opt-sequence-number")] = self.seq
        annotations[symbol("x-opt-enqueued-time")] = timestamp(self.enqueued)
        annotations.update(extra_annotations)
        parts = [encode_section(HEADER, header), encode_section(MESSAGE_ANNOTATIONS, annotations)]
        parts.extend(raw for _, raw in self.rest)
        return b"".join(parts)


# ---------------------------------------------------------------------------
# Broker state.


class Entity(object):
    def __init__(self, name):
        self.name = name
        self.ready = []  # Stored, ordered by seq
        self.next_seq = 1
        self.consumers = []  # LinkRec of broker-side senders
        self.rr = 0

    def enqueue(self, m, keep_seq=False):
        if not keep_seq:
            m.seq = self.next_seq
            self.next_seq += 1
            m.enqueued = now_ms()
        i = len(self.ready)
        while i > 0 and self.ready[i - 1].seq > m.seq:
            i -= 1
        self.ready.insert(i, m)


class LinkRec(object):
    """What the broker knows about one attached link."""

    def __init__(self, link, kind, node, conn_id):
        self.link = link
        self.kind = kind  # "entity", "cbs" or "mgmt"
        self.node = node  # normalised entity name ("$cbs" for the CBS node)
        self.conn_id = conn_id
        self.reply_address = None  # for RPC reply links
        self.pending = []  # encoded replies waiting for credit
        self.closed = False

    def usable(self):
        if self.closed:
            return False
        st = self.link.state
        return bool(st & Endpoint.LOCAL_ACTIVE) and bool(st & Endpoint.REMOTE_ACTIVE)


class Lock(object):
    def __init__(self, token, entity, message, rec, dlv, expires):
        self.token = token
        self.entity = entity
        self.message = message
        self.rec = rec
        self.dlv = dlv
        self.expires = expires  # time.time() seconds


def normalise(address):
    a = (address or "").strip()
    if "://" in a:
        a = a.split("://", 1)[1]
        a = a.split("/", 1)[1] if "/" in a else ""
    return a.strip("/").lower()


def base_entity(node):
    """The queue/topic/subscription a node belongs to."""
    if node.endswith(MANAGEMENT_SUFFIX):
        node = node[: -len(MANAGEMENT_SUFFIX)]
    if node.endswith(DEAD_LETTER_SUFFIX):
        node = node[: -len(DEAD_LETTER_SUFFIX)]
    return node


def uuid_list(value):
    if isinstance(value, Array):
        items = value.elements
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    out = []
    for item in items:
        if isinstance(item, uuid.UUID):
            out.append(item)
        elif isinstance(item, (bytes, bytearray)) and len(item) == 16:
            out.append(uuid.UUID(bytes=bytes(item)))
        else:
            try:
                out.append(uuid.UUID(str(item)))
            except ValueError:
                return None
    return out


class Broker(Handler):
    def __init__(self, opts):
        super(Broker, self).__init__()
        self.opts = opts
        self.url = "%s:%d" % (opts.host, opts.port)
        self.entities = {}
        self.topics = {}  # topic name -> set of subscription node names
        self.routes = {}  # RPC reply address -> LinkRec
        self.links = []  # every live LinkRec
        self.locks = {}  # uuid.UUID -> Lock
        self.expired = {}  # uuid.UUID -> time the lock expired
        self.conn_seq = 0
        self.absent = set(n.strip("/").lower() for n in opts.absent)
        self.deny = set(n.strip("/").lower() for n in opts.deny)
        self.refusals = {}
        for spec in opts.refuse:
            name, _, cond = spec.partition("=")
            self.refusals[name.strip("/").lower()] = cond
        self.hang = set(n.strip("/").lower() for n in opts.hang)
        self.container = None

    # -- reactor lifecycle --------------------------------------------------

    def on_reactor_init(self, event):
        self.container = event.reactor
        self.container.listen(self.url)
        print("sbstub listening on %s" % self.url, flush=True)
        self.container.schedule(TICK_SECONDS, self)

    def on_timer_task(self, event):
        self.tick()
        self.container.schedule(TICK_SECONDS, self)

    # -- endpoint events ----------------------------------------------------

    def on_connection_remote_open(self, event):
        conn = event.connection
        if conn.state & Endpoint.LOCAL_UNINIT:
            self.conn_seq += 1
            conn.sbstub_id = self.conn_seq
            conn.open()

    def on_session_remote_open(self, event):
        ssn = event.session
        if ssn.state & Endpoint.LOCAL_UNINIT:
            ssn.open()

    def on_link_remote_open(self, event):
        link = event.link
        if link.state & Endpoint.LOCAL_UNINIT:
            self.attach(link)

    def on_link_remote_close(self, event):
        link = event.link
        self.forget_link(link)
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.close()

    def on_link_remote_detach(self, event):
        link = event.link
        self.forget_link(link)
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.detach()

    def on_session_remote_close(self, event):
        ssn = event.session
        for rec in list(self.links):
            if rec.link.session == ssn:
                self.forget_rec(rec)
        if not ssn.state & Endpoint.LOCAL_CLOSED:
            ssn.close()

    def on_connection_remote_close(self, event):
        conn = event.connection
        self.forget_connection(conn)
        if not conn.state & Endpoint.LOCAL_CLOSED:
            conn.close()

    def on_transport_closed(self, event):
        conn = event.connection
        if conn is not None:
            self.forget_connection(conn)

    def on_link_flow(self, event):
        link = event.link
        rec = getattr(link, "sbstub_rec", None)
        if rec is None or not link.is_sender:
            return
        if rec.kind == "entity":
            self.dispatch(self.entity(rec.node))
        else:
            self.flush_replies(rec)
        if link.drain_mode:
            link.drained()

    def on_delivery(self, event):
        dlv = event.delivery
        link = dlv.link
        rec = getattr(link, "sbstub_rec", None)
        if rec is None:
            if dlv.link.is_receiver and dlv.readable and not dlv.partial:
                link.recv(dlv.pending)
                link.advance()
            dlv.settle()
            return
        if link.is_receiver:
            self.incoming(rec, dlv)
        else:
            self.outcome(rec, dlv)

    # -- links --------------------------------------------------------------

    def attach(self, link):
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        link.max_message_size = self.opts.max_message_size
        if link.is_sender:
            address = link.remote_source.address
        else:
            address = link.remote_target.address
        node = normalise(address)
        if node == "$cbs":
            kind = "cbs"
        elif node.endswith(MANAGEMENT_SUFFIX):
            kind = "mgmt"
        else:
            kind = "entity"
        base = base_entity(node)
        if kind != "cbs":
            if not base or "$" in base:
                return self.refuse(link, "amqp:not-found", "no entity at address %r" % address)
            if base in self.absent:
                return self.refuse(
                    link, "amqp:not-found", "The messaging entity '%s' could not be found." % base
                )
            if base in self.deny:
                return self.refuse(link, "amqp:unauthorized-access", "access to '%s' is denied" % base)
            if base in self.refusals:
                return self.refuse(link, self.refusals[base], "fault injected for '%s'" % base)
            if base in self.hang:
                log("hang", repr(address))
                return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        if kind == "mgmt":
            node = node[: -len(MANAGEMENT_SUFFIX)]
        rec = LinkRec(link, kind, node, getattr(link.connection, "sbstub_id", 0))
        link.sbstub_rec = rec
        self.links.append(rec)
        self.note_subscription(base)
        link.open()
        log("attach", "sender" if link.is_sender else "receiver", kind, repr(address))
        if link.is_receiver:
            link.flow(INCOMING_CREDIT)
        elif kind == "entity":
            self.entity(node).consumers.append(rec)
        else:
            rec.reply_address = link.remote_target.address
            self.routes[rec.reply_address] = rec

    def refuse(self, link, condition, description):
        log("refuse", condition, description)
        if link.is_sender:
            link.source.type = Terminus.UNSPECIFIED
            link.target.copy(link.remote_target)
        else:
            link.target.type = Terminus.UNSPECIFIED
            link.source.copy(link.remote_source)
        link.open()
        link.condition = Condition(condition, description)
        link.close()

    def forget_link(self, link):
        rec = getattr(link, "sbstub_rec", None)
        if rec is not None:
            self.forget_rec(rec)

    def forget_rec(self, rec):
        if rec.closed:
            return
        rec.closed = True
        if rec in self.links:
            self.links.remove(rec)
        if rec.kind == "entity" and rec.link.is_sender:
            ent = self.entities.get(rec.node)
            if ent is not None and rec in ent.consumers:
                ent.consumers.remove(rec)
        if rec.reply_address is not None and self.routes.get(rec.reply_address) is rec:
            del self.routes[rec.reply_address]
        # Locks outlive their link (as in Service Bus); they can still be
        # settled through $management until they expire.
        for lock in self.locks.values():
            if lock.rec is rec:
                lock.rec = None
                lock.dlv = None

    def forget_connection(self, conn):
        cid = getattr(conn, "sbstub_id", None)
        for rec in list(self.links):
            if rec.conn_id == cid:
                self.forget_rec(rec)

    # -- entities -----------------------------------------------------------

    def entity(self, name):
        ent = self.entities.get(name)
        if ent is None:
            ent = Entity(name)
            self.entities[name] = ent
        return ent

    def note_subscription(self, base):
        i = base.rfind(SUBSCRIPTIONS_SEGMENT)
        if i <= 0:
            return
        sub = base[i + len(SUBSCRIPTIONS_SEGMENT):]
        if not sub or "/" in sub:
            return
        self.topics.setdefault(base[:i], set()).add(base)

    def targets(self, node):
        subs = self.topics.get(node)
        if subs:
            return [self.entity(s) for s in sorted(subs)]
        return [self.entity(node)]

    # -- incoming messages --------------------------------------------------

    def incoming(self, rec, dlv):
        if dlv.aborted:
            dlv.settle()
            return
        if not dlv.readable or dlv.partial:
            return
        raw = rec.link.recv(dlv.pending)
        rec.link.advance()
        try:
            if rec.kind == "entity":
                self.store(rec.node, raw)
            else:
                self.rpc(rec, raw)
            dlv.update(Delivery.ACCEPTED)
        except Exception as err:  # a bad message must not stop the broker
            log("rejecting message:", repr(err))
            dlv.local.condition = Condition("amqp:decode-error", str(err))
            dlv.update(Delivery.REJECTED)
        dlv.settle()
        if rec.link.credit < INCOMING_CREDIT // 2:
            rec.link.flow(INCOMING_CREDIT - rec.link.credit)

    def store(self, node, raw):
        sections = split_sections(raw)
        bodies = [(code, part) for code, part in sections if code in BODY_SECTIONS]
        singles = [sections]
        if bodies and all(code == DATA for code, _ in bodies):
            inner = [section_value(part) for _, part in bodies]
            if all(looks_like_message(b) for b in inner):
                # A SendMessageBatch envelope: each data section is a message.
                singles = [split_sections(bytes(b)) for b in inner]
        for parts in singles:
            m = Stored.from_sections(parts)
            for ent in self.targets(node):
                copy = m.copy()
                ent.enqueue(copy)
                log("stored seq", copy.seq, "in", ent.name)
        for ent in self.targets(node):
            self.dispatch(ent)

    # -- delivery to consumers ----------------------------------------------

    def pick(self, ent, m, now):
        n = len(ent.consumers)
        for i in range(n):
            rec = ent.consumers[(ent.rr + i) % n]
            if not rec.usable() or rec.link.credit <= 0:
                continue
            if rec is m.backoff_link and now < m.backoff_until:
                continue
            ent.rr = (ent.rr + i + 1) % n
            return rec
        return None

    def dispatch(self, ent):
        now = time.monotonic()
        while ent.ready:
            m = ent.ready[0]
            rec = self.pick(ent, m, now)
            if rec is None:
                return
            ent.ready.pop(0)
            self.deliver(ent, rec, m)

    def deliver(self, ent, rec, m):
        link = rec.link
        tag = uuid.uuid4().hex[:16]
        # The SDK turns the 16-byte tag into the lock token with the .NET GUID
        # byte order, which is what uuid's bytes_le describes.
        token = uuid.UUID(bytes_le=tag.encode("ascii"))
        presettled = link.snd_settle_mode == Link.SND_SETTLED
        extra = {}
        expires = 0.0
        if not presettled:
            expires = time.time() + self.opts.lock_seconds
            extra[symbol("x-opt-locked-until")] = timestamp(int(expires * 1000))
        if ent.name.endswith(DEAD_LETTER_SUFFIX) and "x-opt-deadletter-source" not in extra:
            extra[symbol("x-opt-deadletter-source")] = ent.name[: -len(DEAD_LETTER_SUFFIX)]
        m.backoff_link = None
        dlv = link.delivery(tag)
        link.send(m.encode(extra))
        link.advance()
        if presettled:
            dlv.settle()
            log("delivered seq", m.seq, "from", ent.name, "(deleted)")
        else:
            self.locks[token] = Lock(token, ent, m, rec, dlv, expires)
            log("delivered seq", m.seq, "from", ent.name, "locked as", token)

    # -- settlement ---------------------------------------------------------

    def outcome(self, rec, dlv):
        if rec.kind != "entity":
            if dlv.settled or dlv.updated:
                dlv.settle()
            return
        state = dlv.remote_state
        terminal = state in (Delivery.ACCEPTED, Delivery.REJECTED, Delivery.RELEASED, Delivery.MODIFIED)
        if not terminal and not dlv.settled:
            return
        try:
            token = uuid.UUID(bytes_le=dlv.tag.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            dlv.settle()
            return
        lock = self.locks.pop(token, None)
        if lock is None:
            if self.expired.pop(token, None) is not None:
                log("late settlement of expired lock", token)
                dlv.local.condition = Condition(
                    "com.microsoft:message-lock-lost",
                    "The lock supplied is invalid. Either the lock expired, or the message has "
                    "already been removed from the queue.",
                )
                dlv.update(Delivery.REJECTED)
            dlv.settle()
            return
        remote = dlv.remote
        if state == Delivery.ACCEPTED:
            log("completed seq", lock.message.seq)
        elif state == Delivery.REJECTED:
            info = {}
            cond = remote.condition
            if cond is not None and isinstance(cond.info, dict):
                info = cond.info
            extra = {str(k): v for k, v in info.items()
                     if str(k) not in ("DeadLetterReason", "DeadLetterErrorDescription")}
            self.dead_letter(
                lock.entity,
                lock.message,
                as_text(info.get("DeadLetterReason")),
                as_text(info.get("DeadLetterErrorDescription")),
                extra,
            )
        elif state == Delivery.MODIFIED:
            if remote.undeliverable:
                # DeferMessage: not emulated. Put the message back and fail.
                lock.entity.enqueue(lock.message, keep_seq=True)
                dlv.local.condition = Condition(
                    "amqp:not-implemented", "sbstub does not emulate deferred messages"
                )
                dlv.update(Delivery.REJECTED)
            else:
                if isinstance(remote.annotations, dict):
                    lock.message.annotations.update(remote.annotations)
                self.redeliver(lock.entity, lock.message)
        else:
            # Released (or settled without an outcome): not a delivery
            # attempt. Keep it away from this link for a moment so a client
            # that releases what it cannot use does not spin.
            m = lock.message
            m.backoff_link = rec
            m.backoff_until = time.monotonic() + RELEASE_BACKOFF_SECONDS
            lock.entity.enqueue(m, keep_seq=True)
        dlv.settle()
        self.dispatch(lock.entity)

    def redeliver(self, ent, m):
        """Return an abandoned or expired message, counting the attempt."""
        m.count += 1
        if m.count >= self.opts.max_delivery_count:
            self.dead_letter(
                ent,
                m,
                "MaxDeliveryCountExceeded",
                "Message could not be consumed after %d delivery attempts." % m.count,
                {},
            )
            return
        ent.enqueue(m, keep_seq=True)

    def dead_letter(self, ent, m, reason, description, extra):
        props = m.app_properties()
        props.update(extra)
        props["DeadLetterReason"] = reason
        props["DeadLetterErrorDescription"] = description
        m.set_app_properties(props)
        m.annotations[symbol("x-opt-deadletter-source")] = ent.name
        if ent.name.endswith(DEAD_LETTER_SUFFIX):
            target = self.entity(ent.name)
        else:
            target = self.entity(ent.name + DEAD_LETTER_SUFFIX)
        target.enqueue(m)
        log("dead-lettered into", target.name, "reason", repr(reason))
        self.dispatch(target)

    def tick(self):
        now = time.time()
        for token, lock in list(self.locks.items()):
            if lock.expires <= now:
                del self.locks[token]
                self.expired[token] = now
                log("lock expired", token)
                self.redeliver(lock.entity, lock.message)
        for token, when in list(self.expired.items()):
            if now - when > EXPIRED_TOKEN_MEMORY_SECONDS:
                del self.expired[token]
        for ent in list(self.entities.values()):
            if ent.ready and ent.consumers:
                self.dispatch(ent)

    # -- request/response nodes ---------------------------------------------

    def rpc(self, rec, raw):
        req = Message()
        req.decode(raw)
        props = req.properties or {}
        op = as_text(props.get("operation"))
        if rec.kind == "cbs":
            code, desc, body = self.cbs(op, props)
        else:
            code, desc, body = self.management(rec.node, op, req.body)
        log("rpc", rec.kind, rec.node, op, "->", code)
        if not req.reply_to:
            return
        reply = Message(
            correlation_id=req.id,
            address=req.reply_to,
            properties={"status-code": int32(code), "status-description": desc},
            body=body,
        )
        route = self.routes.get(req.reply_to)
        if route is None:
            log("no reply link for", repr(req.reply_to))
            return
        route.pending.append(reply.encode())
        self.flush_replies(route)

    def flush_replies(self, rec):
        link = rec.link
        while rec.pending and rec.usable() and link.credit > 0:
            encoded = rec.pending.pop(0)
            dlv = link.delivery(uuid.uuid4().hex[:16])
            link.send(encoded)
            link.advance()
            if link.snd_settle_mode == Link.SND_SETTLED:
                dlv.settle()

    def cbs(self, op, props):
        if op != "put-token":
            return 501, "sbstub: unsupported $cbs operation %r" % op, None
        audience = normalise(as_text(props.get("name")))
        for name in self.deny:
            if audience == name or audience.endswith("/" + name):
                return 401, "Unauthorized: access to '%s' is denied" % name, None
        return 200, "OK", None

    def management(self, node, op, body):
        body = body if isinstance(body, dict) else {}
        if op == "com.microsoft:peek-message":
            return self.peek(node, body)
        if op == "com.microsoft:renew-lock":
            return self.renew(node, body)
        if op == "com.microsoft:update-disposition":
            return self.update_disposition(node, body)
        return 501, "sbstub does not emulate %r" % op, None

    def peek(self, node, body):
        try:
            start = int(body.get("from-sequence-number", 1))
            count = int(body.get("message-count", 1))
        except (TypeError, ValueError):
            return 400, "bad peek request", None
        ent = self.entity(node)
        candidates = list(ent.ready)
        candidates.extend(lock.message for lock in self.locks.values() if lock.entity is ent)
        candidates = sorted((m for m in candidates if m.seq >= start), key=lambda m: m.seq)
        chosen = candidates[: max(count, 0)]
        if not chosen:
            return 204, "No messages", None
        extra = {}
        encoded = []
        for m in chosen:
            if ent.name.endswith(DEAD_LETTER_SUFFIX):
                extra = {symbol("x-opt-deadletter-source"): ent.name[: -len(DEAD_LETTER_SUFFIX)]}
            encoded.append({"message": m.encode(extra)})
        return 200, "OK", {"messages": encoded}

    def renew(self, node, body):
        tokens = uuid_list(body.get("lock-tokens"))
        if tokens is None:
            return 400, "lock-tokens must be an array of uuids", None
        expirations = []
        for token in tokens:
            lock = self.locks.get(token)
            if lock is None or lock.entity.name != node:
                return 410, "The lock supplied is invalid (lock token %s)" % token, None
            lock.expires = time.time() + self.opts.lock_seconds
            expirations.append(timestamp(int(lock.expires * 1000)))
        return 200, "OK", {"expirations": Array(UNDESCRIBED, Data.TIMESTAMP, *expirations)}

    def update_disposition(self, node, body):
        tokens = uuid_list(body.get("lock-tokens"))
        if tokens is None:
            return 400, "lock-tokens must be an array of uuids", None
        status = as_text(body.get("disposition-status"))
        if status not in ("completed", "abandoned", "suspended"):
            return 501, "sbstub does not emulate disposition %r" % status, None
        changes = body.get("properties-to-modify")
        changes = dict(changes) if isinstance(changes, dict) else {}
        for token in tokens:
            lock = self.locks.get(token)
            if lock is None or lock.entity.name != node:
                return 410, "The lock supplied is invalid (lock token %s)" % token, None
        for token in tokens:
            lock = self.locks.pop(token)
            if lock.dlv is not None:
                lock.dlv.settle()
            if status == "completed":
                pass
            elif status == "abandoned":
                lock.message.annotations.update(changes)
                self.redeliver(lock.entity, lock.message)
            else:
                self.dead_letter(
                    lock.entity,
                    lock.message,
                    as_text(body.get("deadletter-reason")),
                    as_text(body.get("deadletter-description")),
                    {str(k): v for k, v in changes.items()},
                )
            self.dispatch(lock.entity)
        return 200, "OK", None


def watch_stdin():
    """Exit when the parent closes our stdin (it stopped or died)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:
        pass
    os._exit(0)


def main(argv):
    global VERBOSE
    p = argparse.ArgumentParser(description="Minimal AMQP 1.0 broker for Service Bus contract tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lock-seconds", type=float, default=60.0)
    p.add_argument("--max-delivery-count", type=int, default=10)
    p.add_argument("--max-message-size", type=int, default=256 * 1024)
    p.add_argument("--absent", action="append", default=[], help="entity that does not exist")
    p.add_argument("--deny", action="append", default=[], help="entity whose claims are refused")
    p.add_argument("--refuse", action="append", default=[], help="ENTITY=CONDITION: refuse attaches with that condition")
    p.add_argument("--hang", action="append", default=[], help="entity whose attaches are never answered")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    if not 0 < opts.port < 65536:
        p.error("--port must be between 1 and 65535")
    if opts.lock_seconds <= 0 or opts.max_delivery_count < 1 or opts.max_message_size < 1024:
        p.error("--lock-seconds, --max-delivery-count and --max-message-size must be positive")
    VERBOSE = opts.verbose
    if opts.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        Container(Broker(opts)).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
