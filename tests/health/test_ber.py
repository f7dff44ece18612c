"""The SNMP v1/v2c BER codec (collector/health/ber.py): the same bytes as pyasn1, and hostile bytes refused (unit)."""

from __future__ import annotations

from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from collector.health import ber

UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
EVERY_TYPE: list[tuple[ber.Value, Any]] = [  # (codec value, the same value in pysnmp)
    (0, rfc1902.Integer32(0)),
    (-129, rfc1902.Integer32(-129)),
    (2**31 - 1, rfc1902.Integer32(2**31 - 1)),
    (-(2**31), rfc1902.Integer32(-(2**31))),
    (b"", rfc1902.OctetString(b"")),
    (b"\x24\x00", rfc1902.OctetString(b"\x24\x00")),
    (b"x" * 300, rfc1902.OctetString(b"x" * 300)),  # two-octet length
    (None, rfc1902.univ.Null("")),
    ((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10), rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))),
    ((2, 999, 2**32 - 1), rfc1902.ObjectIdentifier((2, 999, 2**32 - 1))),
    (ber.IpAddress(b"\x0a\x01\x02\x03"), rfc1902.IpAddress("10.1.2.3")),
    (ber.Counter32(2**32 - 1), rfc1902.Counter32(2**32 - 1)),
    (ber.Counter32(128), rfc1902.Counter32(128)),
    (ber.Gauge32(0), rfc1902.Gauge32(0)),
    (ber.TimeTicks(4_000_000_000), rfc1902.TimeTicks(4_000_000_000)),
    (ber.Opaque(b"\x9f\x78\x04\x3f\x80\x00\x00"), rfc1902.Opaque(b"\x9f\x78\x04\x3f\x80\x00\x00")),
    (ber.Counter64(2**64 - 1), rfc1902.Counter64(2**64 - 1)),
    (ber.Missing.NO_SUCH_OBJECT, rfc1905.noSuchObject),
    (ber.Missing.NO_SUCH_INSTANCE, rfc1905.noSuchInstance),
    (ber.Missing.END_OF_MIB_VIEW, rfc1905.endOfMibView),
]


def pysnmp_response(version: int, var_binds: list[tuple[tuple[int, ...], object]], request_id: int = 77,
                    community: str = "public", status: int = 0, index: int = 0) -> bytes:
    p_mod = api.PROTOCOL_MODULES[version]
    message = p_mod.Message()
    p_mod.apiMessage.set_defaults(message)
    p_mod.apiMessage.set_community(message, community)
    pdu = p_mod.GetResponsePDU()
    p_mod.apiPDU.set_defaults(pdu)
    p_mod.apiPDU.set_request_id(pdu, request_id)
    p_mod.apiPDU.set_error_status(pdu, status)
    p_mod.apiPDU.set_error_index(pdu, index)
    p_mod.apiPDU.set_varbinds(pdu, var_binds)
    p_mod.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def response(*var_binds: ber.VarBind, version: int = ber.V2C, request_id: int = 77) -> bytes:
    return ber.encode_message(ber.Message(version, b"public", ber.Pdu(ber.RESPONSE, request_id, 0, 0, var_binds)))


def test_every_value_type_decodes_as_pyasn1_encodes_it_and_pyasn1_decodes_it_back():
    oids = [(1, 3, 6, 1, 9, i) for i in range(len(EVERY_TYPE))]
    wire = pysnmp_response(ber.V2C, [(oid, theirs) for oid, (_, theirs) in zip(oids, EVERY_TYPE, strict=True)])
    message = ber.decode_message(wire)
    assert (message.version, message.community, message.pdu.kind, message.pdu.request_id) == \
        (ber.V2C, b"public", ber.RESPONSE, 77)
    got = [value for _, value in message.pdu.var_binds]
    assert [oid for oid, _ in message.pdu.var_binds] == oids
    assert [(type(v), v) for v in got] == [(type(v), v) for v, _ in EVERY_TYPE]
    p_mod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    again, rest = decoder.decode(ber.encode_message(message), asn1Spec=p_mod.Message())
    back = p_mod.apiPDU.get_varbinds(p_mod.apiMessage.get_pdu(again))
    assert rest == b"" and [tuple(name) for name, _ in back] == oids
    for (_, theirs), (_, value) in zip(EVERY_TYPE, back, strict=True):
        assert value.tagSet == theirs.tagSet and value == theirs
    # byte for byte too, but for pyasn1's -2**31, which it pads to five octets (FF 80 00 00 00)
    assert len(ber.encode_message(message)) == len(wire) - 1


def test_requests_are_what_pysnmp_decodes():
    for kind, pdu_class in [(ber.GET, "GetRequestPDU"), (ber.GETNEXT, "GetNextRequestPDU"),
                            (ber.GETBULK, "GetBulkRequestPDU")]:
        wire = ber.encode_request(ber.V2C, b"s3cret", kind, 2**31 - 1, [UPTIME, (1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 7, 1)],
                                  non_repeaters=1, max_repetitions=4)
        p_mod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        message, rest = decoder.decode(wire, asn1Spec=p_mod.Message())
        pdu = p_mod.apiMessage.get_pdu(message)
        assert rest == b"" and type(pdu).__name__ == pdu_class
        assert bytes(p_mod.apiMessage.get_community(message)) == b"s3cret"
        assert int(p_mod.apiPDU.get_request_id(pdu)) == 2**31 - 1
        assert [tuple(name) for name, _ in p_mod.apiPDU.get_varbinds(pdu)] == \
            [UPTIME, (1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 7, 1)]
        if kind == ber.GETBULK:
            assert int(p_mod.apiBulkPDU.get_non_repeaters(pdu)) == 1
            assert int(p_mod.apiBulkPDU.get_max_repetitions(pdu)) == 4


def test_v1_error_response_from_pysnmp():
    wire = pysnmp_response(api.SNMP_VERSION_1, [(UPTIME, rfc1902.univ.Null(""))], status=2, index=1)
    pdu = ber.decode_message(wire).pdu
    assert (pdu.error_status, pdu.error_index, pdu.error_name, pdu.var_binds) == (2, 1, "noSuchName", ((UPTIME, None),))


def test_net_snmp_long_form_lengths_are_accepted():
    # net-snmp writes the outer SEQUENCE with a two-octet length even when one would do
    short = response((UPTIME, ber.TimeTicks(406)))
    assert short[1] < 0x80
    padded = b"\x30\x82" + len(short[2:]).to_bytes(2, "big") + short[2:]
    assert ber.decode_message(padded) == ber.decode_message(short)


def test_every_truncation_of_an_answer_is_refused():
    wire = response((UPTIME, ber.TimeTicks(406)), ((1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2, 1), b"\x24\x00"))
    for cut in range(len(wire)):
        with pytest.raises(ber.BerError):
            ber.decode_message(wire[:cut])


def tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes((tag, len(content))) + content


UPTIME_TLV = b"\x06\x08\x2b\x06\x01\x02\x01\x01\x03\x00"


def raw(value: bytes = b"\x43\x02\x01\x96", name: bytes = UPTIME_TLV, version: bytes = b"\x02\x01\x01",
        pdu: int = 0xA2) -> bytes:
    """A Response assembled by hand around one hostile element (the codec would not encode it)."""
    header = b"\x02\x01\x4d\x02\x01\x00\x02\x01\x00"  # request-id 77, error-status 0, error-index 0
    return tlv(0x30, version + tlv(0x04, b"public") + tlv(pdu, header + tlv(0x30, tlv(0x30, name + value))))


GOOD = raw()
HOSTILE = {
    "trailing bytes": GOOD + b"\x00",
    "indefinite length": b"\x30\x80" + GOOD[2:] + b"\x00\x00",
    "length of 5 octets": b"\x30\x85\x00\x00\x00\x00" + GOOD[1:],
    "length past the end": b"\x30" + bytes((GOOD[1] + 1,)) + GOOD[2:],
    "not a sequence": b"\x31" + GOOD[1:],
    "SNMPv3": raw(version=b"\x02\x01\x03"),
    "version 2": raw(version=b"\x02\x01\x02"),
    "version of 6 octets": raw(version=b"\x02\x06\x00\x00\x00\x00\x00\x01"),
    "a trap PDU": raw(pdu=0xA7),
    "counter over 32 bits": raw(b"\x43\x05\x01\x00\x00\x00\x00"),
    "negative timeticks": raw(b"\x43\x01\xff"),
    "integer over 32 bits": raw(b"\x02\x05\x01\x00\x00\x00\x00"),
    "integer of 6 octets": raw(b"\x02\x06\x00\x00\x00\x00\x00\x01"),
    "empty integer": raw(b"\x02\x00"),
    "IpAddress of 5 octets": raw(b"\x40\x05\x01\x02\x03\x04\x05"),
    "NULL with content": raw(b"\x05\x01\x00"),
    "unknown value type": raw(b"\x47\x01\x00"),
    "sequence as a value": raw(b"\x30\x00"),
    "two values": raw(b"\x43\x02\x01\x96\x05\x00"),
    "no value": raw(b""),
    "OID with a 0x80 pad": raw(name=b"\x06\x09\x2b\x06\x01\x02\x01\x01\x80\x03\x00"),
    "OID cut in a sub-identifier": raw(name=b"\x06\x08\x2b\x06\x01\x02\x01\x01\x03\x81"),
    "OID arc over 32 bits": raw(name=b"\x06\x0c\x2b\x06\x01\x02\x01\x01\x03\x90\x80\x80\x80\x00"),
    "empty OID": raw(name=b"\x06\x00"),
    "name is not an OID": raw(name=b"\x04\x08\x2b\x06\x01\x02\x01\x01\x03\x00"),
}


def test_the_hand_assembled_answer_is_well_formed():
    assert ber.decode_message(GOOD) == ber.decode_message(response((UPTIME, ber.TimeTicks(406))))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bytes_are_refused(name):
    with pytest.raises(ber.BerError):
        ber.decode_message(HOSTILE[name])


def test_exception_values_and_counter64_are_not_v1():
    for value in (ber.Missing.NO_SUCH_INSTANCE, ber.Counter64(1)):
        v2c = response((UPTIME, value))
        v1 = v2c[:4] + b"\x00" + v2c[5:]
        with pytest.raises(ber.BerError, match="SNMPv1"):
            ber.decode_message(v1)
        with pytest.raises(ber.BerError, match="SNMPv1"):
            response((UPTIME, value), version=ber.V1)
    with pytest.raises(ber.BerError):
        ber.encode_request(ber.V1, b"public", ber.GETBULK, 1, [UPTIME])


def test_size_limits():
    many = response(*(((1, 3, 6, 1, i), None) for i in range(ber.MAX_VAR_BINDS + 1)))
    with pytest.raises(ber.BerError, match="variable bindings"):
        ber.decode_message(many)
    with pytest.raises(ber.BerError, match="exceeds"):
        ber.decode_message(response((UPTIME, b"x" * ber.MAX_MESSAGE_SIZE)))
    long_oid = (1, 3, *range(ber.MAX_OID_ARCS))
    with pytest.raises(ber.BerError):
        response((long_oid, None))


@pytest.mark.parametrize("value", [True, "text", 2**31, -(2**31) - 1, ber.Counter32(2**32), ber.Counter32(-1),
                                   ber.IpAddress(b"\x01\x02\x03"), 1.5, (1,), (3, 1), (1, 40), (1, 3, -1)])
def test_values_that_cannot_be_encoded(value):
    with pytest.raises(ber.BerError):
        response((UPTIME, value))


def test_typed_checks_like_the_decoder():
    assert type(ber.typed(0x43, 5)) is ber.TimeTicks and ber.typed(0x82, None) is ber.Missing.END_OF_MIB_VIEW
    with pytest.raises(ber.BerError):
        ber.typed(0x41, -1)
    with pytest.raises(ber.BerError):
        ber.typed(0x30, b"")
