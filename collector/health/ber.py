"""SNMP v1/v2c messages in BER (RFC 1157, RFC 3416): pure encode and decode, strict, no I/O.

The frame, every byte of it checked on decode::

    Message ::= SEQUENCE (30) { version INTEGER (0 = v1, 1 = v2c), community OCTET STRING, PDU }
    PDU     ::= [A0 Get | A1 GetNext | A2 Response | A3 Set | A5 GetBulk, v2c only] IMPLICIT SEQUENCE {
                    request-id INTEGER, error-status INTEGER (GetBulk: non-repeaters),
                    error-index INTEGER (GetBulk: max-repetitions), SEQUENCE OF VarBind }
    VarBind ::= SEQUENCE { name OBJECT IDENTIFIER, value }

Values are plain Python objects, the SNMP type kept by a subclass where Python has none:

    02 INTEGER (Integer32)  int          40 IpAddress   IpAddress(bytes), 4 octets
    04 OCTET STRING         bytes        41 Counter32   Counter32(int)     42 Gauge32  Gauge32(int)
    05 NULL                 None         43 TimeTicks   TimeTicks(int)     44 Opaque   Opaque(bytes)
    06 OBJECT IDENTIFIER    tuple[int]   46 Counter64   Counter64(int), v2c only
    80 noSuchObject, 81 noSuchInstance, 82 endOfMibView: the Missing members, v2c only

Strict means: definite lengths only, every element ending exactly where its container says, no
trailing bytes, integers within their type's range, OIDs of at most 128 sub-identifiers of at most
32 bits, at most MAX_MESSAGE_SIZE bytes and MAX_VAR_BINDS bindings. Anything else raises BerError,
a ValueError; no other exception comes out of `decode_message`, whatever the bytes. Non-minimal
length forms are accepted (net-snmp sends `30 82 00 2c`).

The collector's poller (collector/health/community.py) and the printer simulator's agents
(printer_sim/snmp_agent.py) both speak through this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

V1, V2C = 0, 1
GET, GETNEXT, RESPONSE, SET, GETBULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5
PDU_KINDS = {GET: "GetRequest", GETNEXT: "GetNextRequest", RESPONSE: "Response", SET: "SetRequest",
             GETBULK: "GetBulkRequest"}
ERROR_STATUS = ("noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
                "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
                "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
                "inconsistentName")
NO_SUCH_NAME, GEN_ERR, NOT_WRITABLE = 2, 5, 17

MAX_MESSAGE_SIZE = 65507  # the largest UDP payload over IPv4
MAX_VAR_BINDS = 2048
MAX_OID_ARCS = 128  # RFC 2578 §3.5
_MAX_ARC = 2**32 - 1
_INT32 = (-(2**31), 2**31 - 1)

_INTEGER, _OCTETS, _NULL, _OID, _SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
_IPADDRESS, _COUNTER32, _GAUGE32, _TIMETICKS, _OPAQUE, _COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46


class BerError(ValueError):
    """Bytes that are not a well-formed SNMP v1/v2c message, or a value that cannot be encoded."""


class Counter32(int):
    __slots__ = ()


class Gauge32(int):
    __slots__ = ()


class TimeTicks(int):
    __slots__ = ()


class Counter64(int):
    __slots__ = ()


class IpAddress(bytes):
    __slots__ = ()


class Opaque(bytes):
    __slots__ = ()


class Missing(Enum):
    """The v2c exception values in a Response: the variable is not there (RFC 3416 §4.2.1)."""

    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


OID = tuple[int, ...]
Value = int | bytes | OID | None | Missing
VarBind = tuple[OID, Value]

_UNSIGNED: dict[int, tuple[type[int], int]] = {  # tag: (type, largest value)
    _COUNTER32: (Counter32, 2**32 - 1), _GAUGE32: (Gauge32, 2**32 - 1), _TIMETICKS: (TimeTicks, 2**32 - 1),
    _COUNTER64: (Counter64, 2**64 - 1)}
_TAG_OF_TYPE: dict[type, int] = {
    int: _INTEGER, bytes: _OCTETS, type(None): _NULL, tuple: _OID, IpAddress: _IPADDRESS, Counter32: _COUNTER32,
    Gauge32: _GAUGE32, TimeTicks: _TIMETICKS, Opaque: _OPAQUE, Counter64: _COUNTER64}
_V2C_ONLY = frozenset({_COUNTER64, *(m.value for m in Missing)})


@dataclass(frozen=True, slots=True)
class Pdu:
    kind: int  # GET, GETNEXT, RESPONSE, SET or GETBULK
    request_id: int
    error_status: int = 0  # GETBULK: non-repeaters
    error_index: int = 0  # GETBULK: max-repetitions
    var_binds: tuple[VarBind, ...] = ()

    @property
    def error_name(self) -> str:
        status = self.error_status
        return ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"errorStatus {status}"


@dataclass(frozen=True, slots=True)
class Message:
    version: int  # V1 or V2C
    community: bytes
    pdu: Pdu


def typed(tag: int, raw: int | bytes | OID | None) -> Value:
    """The Python value for an SNMP type tag and its plain content (checked like a decoded one)."""
    if tag == _INTEGER and isinstance(raw, int):
        return _in_range(int(raw), *_INT32, "INTEGER")
    if tag in _UNSIGNED and isinstance(raw, int):
        kind, largest = _UNSIGNED[tag]
        return kind(_in_range(int(raw), 0, largest, kind.__name__))
    if tag == _OCTETS and isinstance(raw, bytes):
        return bytes(raw)
    if tag == _IPADDRESS and isinstance(raw, bytes) and len(raw) == 4:
        return IpAddress(raw)
    if tag == _OPAQUE and isinstance(raw, bytes):
        return Opaque(raw)
    if tag == _OID and isinstance(raw, tuple):
        return _checked_oid(raw)
    if tag == _NULL and raw is None:
        return None
    if raw is None and tag in (0x80, 0x81, 0x82):
        return Missing(tag)
    raise BerError(f"no SNMP value of type 0x{tag:02x} from {raw!r}")


# --- encoding ---------------------------------------------------------------------------------

def encode_message(message: Message) -> bytes:
    pdu = message.pdu
    if message.version not in (V1, V2C):
        raise BerError(f"SNMP version {message.version} is not v1 or v2c")
    if pdu.kind not in PDU_KINDS or (pdu.kind == GETBULK and message.version == V1):
        raise BerError(f"PDU type 0x{pdu.kind:02x} cannot be sent in SNMP version {message.version}")
    v1 = message.version == V1
    bindings = b"".join(_tlv(_SEQUENCE, _encode_oid(oid) + _encode_value(value, v1)) for oid, value in pdu.var_binds)
    body = b"".join((_encode_int(pdu.request_id), _encode_int(pdu.error_status), _encode_int(pdu.error_index),
                     _tlv(_SEQUENCE, bindings)))
    data = _tlv(_SEQUENCE, b"".join((_encode_int(message.version), _tlv(_OCTETS, bytes(message.community)),
                                     _tlv(pdu.kind, body))))
    if len(data) > MAX_MESSAGE_SIZE:
        raise BerError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return data


def encode_request(version: int, community: bytes, kind: int, request_id: int, oids: Iterable[OID],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A GET / GETNEXT / GETBULK asking for `oids` (values NULL, as the protocol wants)."""
    return encode_message(Message(version, community, Pdu(kind, request_id, non_repeaters, max_repetitions,
                                                          tuple((tuple(oid), None) for oid in oids))))


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _int_octets(n: int) -> bytes:
    return n.to_bytes(((n if n >= 0 else ~n).bit_length() + 8) // 8, "big", signed=True)


def _encode_int(n: int) -> bytes:
    return _tlv(_INTEGER, _int_octets(_in_range(n, *_INT32, "INTEGER")))


def _encode_oid(oid: Sequence[int]) -> bytes:
    oid = _checked_oid(tuple(oid))
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return _tlv(_OID, bytes(out))


def _encode_value(value: Value, v1: bool) -> bytes:
    if isinstance(value, tuple):
        return _encode_oid(value)
    if isinstance(value, Missing):
        tag, content = value.value, b""
    else:
        found = _TAG_OF_TYPE.get(type(value))
        if found is None:
            raise BerError(f"cannot encode {type(value).__name__} as an SNMP value")
        tag, checked = found, typed(found, value)  # range and size checks
        content = _int_octets(checked) if isinstance(checked, int) else bytes(checked or b"")  # type: ignore[arg-type]
    if v1 and tag in _V2C_ONLY:
        raise BerError(f"SNMPv1 has no value of type 0x{tag:02x}")
    return _tlv(tag, content)


# --- decoding ---------------------------------------------------------------------------------

def decode_message(data: bytes) -> Message:
    """The message in `data`, or BerError saying what is wrong with it."""
    data = bytes(data)
    if len(data) > MAX_MESSAGE_SIZE:
        raise BerError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    tag, pos, end = _header(data, 0, len(data))
    if tag != _SEQUENCE:
        raise BerError(f"message is not a SEQUENCE (tag 0x{tag:02x})")
    if end != len(data):
        raise BerError(f"{len(data) - end} bytes after the message")
    version, pos = _integer(data, pos, end, "version")
    if version not in (V1, V2C):
        raise BerError(f"SNMP version {version} is not v1 or v2c")
    tag, start, pos = _header(data, pos, end)
    if tag != _OCTETS:
        raise BerError(f"community is not an OCTET STRING (tag 0x{tag:02x})")
    community = data[start:pos]
    kind, pos, pdu_end = _header(data, pos, end)
    if kind not in PDU_KINDS or (kind == GETBULK and version == V1):
        raise BerError(f"unsupported PDU type 0x{kind:02x} in SNMP version {version}")
    if pdu_end != end:
        raise BerError("bytes after the PDU")
    request_id, pos = _integer(data, pos, end, "request-id")
    error_status, pos = _integer(data, pos, end, "error-status")
    error_index, pos = _integer(data, pos, end, "error-index")
    tag, pos, list_end = _header(data, pos, end)
    if tag != _SEQUENCE:
        raise BerError(f"variable bindings are not a SEQUENCE (tag 0x{tag:02x})")
    if list_end != end:
        raise BerError("bytes after the variable bindings")
    v1 = version == V1
    var_binds: list[VarBind] = []
    while pos < end:
        if len(var_binds) == MAX_VAR_BINDS:
            raise BerError(f"more than {MAX_VAR_BINDS} variable bindings")
        tag, pos, bind_end = _header(data, pos, end)
        if tag != _SEQUENCE:
            raise BerError(f"variable binding is not a SEQUENCE (tag 0x{tag:02x})")
        tag, start, pos = _header(data, pos, bind_end)
        if tag != _OID:
            raise BerError(f"variable name is not an OBJECT IDENTIFIER (tag 0x{tag:02x})")
        name = _decode_oid(data, start, pos)
        tag, start, pos = _header(data, pos, bind_end)
        if pos != bind_end:
            raise BerError("bytes after a variable binding's value")
        var_binds.append((name, _decode_value(tag, data, start, pos, v1)))
    return Message(version, community, Pdu(kind, request_id, error_status, error_index, tuple(var_binds)))


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at `pos`, which must fit before `end`."""
    if pos + 2 > end:
        raise BerError(f"truncated: element header at offset {pos}")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise BerError(f"indefinite length at offset {pos - 1}")
        if count > 3:  # 3 octets already exceed MAX_MESSAGE_SIZE
            raise BerError(f"length of {count} octets at offset {pos - 1}")
        if pos + count > end:
            raise BerError(f"truncated: length at offset {pos - 1}")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > end:
        raise BerError(f"truncated: element at offset {pos} claims {length} bytes, {end - pos} remain")
    return tag, pos, pos + length


def _integer(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    tag, start, pos = _header(data, pos, end)
    if tag != _INTEGER:
        raise BerError(f"{what} is not an INTEGER (tag 0x{tag:02x})")
    return _in_range(_decode_signed(data, start, pos, 5, what), *_INT32, what), pos


def _decode_signed(data: bytes, start: int, end: int, octets: int, what: str) -> int:
    # `octets` is one more than the type's width: an unsigned value needs a leading 00 when its top bit
    # is set, and some encoders (pyasn1 for -2**31) pad a negative one with FF
    if start == end:
        raise BerError(f"{what}: empty INTEGER")
    if end - start > octets:
        raise BerError(f"{what}: INTEGER of {end - start} octets")
    return int.from_bytes(data[start:end], "big", signed=True)


def _decode_value(tag: int, data: bytes, start: int, end: int, v1: bool) -> Value:
    if v1 and tag in _V2C_ONLY:
        raise BerError(f"SNMPv1 has no value of type 0x{tag:02x}")
    if tag == _INTEGER:
        return _in_range(_decode_signed(data, start, end, 5, "INTEGER"), *_INT32, "INTEGER")
    if tag == _OCTETS:
        return data[start:end]
    if tag == _OID:
        return _decode_oid(data, start, end)
    if tag in _UNSIGNED:
        kind, largest = _UNSIGNED[tag]
        number = _decode_signed(data, start, end, 5 if largest < 2**32 else 9, kind.__name__)
        return kind(_in_range(number, 0, largest, kind.__name__))
    if tag == _IPADDRESS:
        if end - start != 4:
            raise BerError(f"IpAddress of {end - start} octets")
        return IpAddress(data[start:end])
    if tag == _OPAQUE:
        return Opaque(data[start:end])
    if tag == _NULL or tag in (0x80, 0x81, 0x82):
        if start != end:
            raise BerError(f"NULL-like value 0x{tag:02x} with {end - start} content octets")
        return None if tag == _NULL else Missing(tag)
    raise BerError(f"unknown value type 0x{tag:02x}")


def _decode_oid(data: bytes, start: int, end: int) -> OID:
    content = data[start:end]
    if not content:
        raise BerError("empty OBJECT IDENTIFIER")
    if len(content) > MAX_OID_ARCS * 5:
        raise BerError(f"OBJECT IDENTIFIER of {len(content)} octets")
    if content[-1] & 0x80:
        raise BerError("truncated OBJECT IDENTIFIER sub-identifier")
    if max(content) < 0x80:  # every sub-identifier in one octet: the usual case, done in C
        arcs = list(content)
    else:
        arcs, arc, fresh = [], 0, True
        for octet in content:
            if fresh and octet == 0x80:
                raise BerError("OBJECT IDENTIFIER sub-identifier with a leading 0x80 octet")
            arc = (arc << 7) | (octet & 0x7F)
            if octet & 0x80:
                fresh = False
                continue
            arcs.append(arc)
            arc, fresh = 0, True
    first = arcs[0]
    top = 0 if first < 40 else 1 if first < 80 else 2
    oid = (top, first - 40 * top, *arcs[1:])
    if len(oid) > MAX_OID_ARCS:
        raise BerError(f"OBJECT IDENTIFIER of {len(oid)} sub-identifiers")
    if max(arcs) > _MAX_ARC:
        raise BerError("OBJECT IDENTIFIER sub-identifier over 32 bits")
    return oid


def _checked_oid(oid: tuple) -> OID:
    if not 2 <= len(oid) <= MAX_OID_ARCS or not all(type(arc) is int and 0 <= arc <= _MAX_ARC for arc in oid):
        raise BerError(f"not an OBJECT IDENTIFIER: {oid!r}")
    if oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or oid[0] * 40 + oid[1] > _MAX_ARC:
        raise BerError(f"OBJECT IDENTIFIER with impossible first arcs: {oid!r}")
    return oid


def _in_range(number: int, low: int, high: int, what: str) -> int:
    if not low <= number <= high:
        raise BerError(f"{what} {number} outside {low}..{high}")
    return number
