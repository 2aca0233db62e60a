#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/seeds/<target>/ from the unit tests' golden
inputs: the captured dig/kdig messages in application/src/dns/testdata, the zone, HTTP and
WebSocket examples of the unit tests, and the packets the link, network and transport tests
build. Each seed is in its target's script format (see the target's doc comment and
fuzz/src/lib.rs). Checksums are left zero: the harnesses fill them in.

Run from anywhere: python3 fuzz/seeds/make_seeds.py (it replaces the seed directories).
"""

import base64
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DNS_TESTDATA = os.path.join(ROOT, "application", "src", "dns", "testdata")

US_MAC = bytes([0x02, 0, 0, 0, 0, 2])
PEER_MAC = bytes([0x02, 0, 0, 0, 0, 1])
BROADCAST = b"\xff" * 6
US = bytes([192, 0, 2, 2])
PEER = bytes([192, 0, 2, 1])

seeds = {}


def add(target, name, data):
    seeds.setdefault(target, []).append((name, bytes(data)))


def chunk(data):
    return struct.pack(">H", len(data)) + bytes(data)


def dns(name):
    with open(os.path.join(DNS_TESTDATA, name + ".bin"), "rb") as f:
        return f.read()


# ---------------------------------------------------------------- link


def arp(op, sender_mac, sender_ip, target_mac, target_ip):
    return struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + sender_mac + sender_ip + target_mac + target_ip


def ethernet(dst, src, ethertype, payload):
    return dst + src + struct.pack(">H", ethertype) + payload


request = ethernet(BROADCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER, b"\0" * 6, US))
reply = ethernet(US_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER, US_MAC, US))
add("ethernet_arp", "request_for_us", b"\x00" + chunk(request))
add("ethernet_arp", "resolve_then_reply",
    b"\x01" + PEER + b"\x00" + chunk(reply) + b"\x01" + PEER + b"\x02\x80\x03")
add("ethernet_arp", "resolve_retry_fail", b"\x01" + PEER + b"\x02\x64\x03\x02\x64\x03\x02\x64\x03\x02\x64\x03")
add("ethernet_arp", "gratuitous", b"\x00" + chunk(ethernet(BROADCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER, b"\0" * 6, PEER))))
add("ethernet_arp", "ipv4_and_ipv6",
    b"\x00" + chunk(ethernet(US_MAC, PEER_MAC, 0x0800, b"\x45" + b"\0" * 19))
    + b"\x00" + chunk(ethernet(b"\x33\x33\0\0\0\1", PEER_MAC, 0x86dd, b"\x60" + b"\0" * 39)))

# ---------------------------------------------------------------- network


def ipv4(proto, payload, src=PEER, dst=US, ident=1, mf=False, offset=0, options=b"", ttl=64):
    ihl = 5 + len(options) // 4
    flags = (0x2000 if mf else 0) | (offset // 8)
    return struct.pack(">BBHHHBBH", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, flags, ttl, proto, 0) + src + dst + options + payload


def icmp(t, code, rest, data):
    return struct.pack(">BBH", t, code, 0) + rest + data


def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, ack, flags, window=65535, options=b"", payload=b""):
    hl = 20 + len(options)
    return struct.pack(">HHIIBBHHH", sport, dport, seq, ack, (hl // 4) << 4, flags, window, 0, 0) + options + payload


echo = ipv4(1, icmp(8, 0, struct.pack(">HH", 0x1234, 1), b"ping data"))
dns_query = ipv4(17, udp(40000, 53, dns("dig_a.query")))
syn = ipv4(6, tcp(40000, 80, 1000, 0, 0x02, options=b"\x02\x04\x05\xb4\x01\x03\x03\x07"))
ours = ipv4(17, udp(5353, 53, b"q"), src=US, dst=PEER)
unreach = ipv4(1, icmp(3, 3, b"\0\0\0\0", ours[:28]), src=PEER, dst=US)
frag_tooBig = ipv4(1, icmp(3, 4, struct.pack(">HH", 0, 1280), ours[:28]), src=PEER, dst=US)
udp_payload = udp(40000, 7, bytes(range(40)))
frag1 = ipv4(17, udp_payload[:24], ident=7, mf=True, offset=0)
frag2 = ipv4(17, udp_payload[24:], ident=7, offset=24)
options = ipv4(1, icmp(8, 0, b"\0\1\0\1", b""), options=b"\x07\x07\x04\0\0\0\0\x00")
for name, script in [
    ("echo_request", b"\x01\x00" + chunk(echo)),
    ("udp_dns_query", b"\x01\x00" + chunk(dns_query)),
    ("tcp_syn", b"\x01\x00" + chunk(syn)),
    ("port_unreachable_quote", b"\x01\x00" + chunk(unreach)),
    ("frag_needed_quote", b"\x01\x00" + chunk(frag_tooBig)),
    ("fragments_in_order", b"\x01\x00" + chunk(frag1) + b"\x00" + chunk(frag2)),
    ("fragment_times_out", b"\x01\x00" + chunk(frag1) + b"\x01\x90\x02\x01\x90\x02"),
    ("record_route_option", b"\x01\x00" + chunk(options)),
    ("unchecked_echo", b"\x00\x00" + chunk(echo)),
]:
    add("ipv4_receive", name, script)


def fragment(key, mf, offset, payload):
    return b"\x00" + bytes([key]) + struct.pack(">H", (0x2000 if mf else 0) | (offset // 8)) + chunk(payload)


data = bytes(range(48))
add("reassembly", "in_order", fragment(0, True, 0, data[:16]) + fragment(0, True, 16, data[16:32]) + fragment(0, False, 32, data[32:]))
add("reassembly", "reversed", fragment(1, False, 32, data[32:]) + fragment(1, True, 16, data[16:32]) + fragment(1, True, 0, data[:16]))
add("reassembly", "overlap_poisons", fragment(2, True, 0, data[:16]) + fragment(2, True, 8, data[:16]) + fragment(2, False, 24, data[:8]))
add("reassembly", "duplicate", fragment(3, True, 0, data[:8]) + fragment(3, True, 0, data[:8]) + b"\x02\xa0\x03")
add("reassembly", "many_keys_evict", b"".join(fragment(k, True, 0, data[:40]) for k in range(8)) + b"\x02\x90\x03")

add("icmp", "echo_request", icmp(8, 0, b"\x12\x34\x00\x01", b"abcdefgh"))
add("icmp", "echo_reply", icmp(0, 0, b"\x12\x34\x00\x01", b""))
add("icmp", "port_unreachable", icmp(3, 3, b"\0\0\0\0", ours[:28]))
add("icmp", "frag_needed", icmp(3, 4, struct.pack(">HH", 0, 1400), ipv4(6, tcp(80, 40000, 1, 2, 0x10), src=US, dst=PEER)[:28]))
add("icmp", "time_exceeded_options", icmp(11, 1, b"\0\0\0\0", ipv4(17, udp(1, 2, b""), options=b"\x01\x01\x01\x00")))

# ---------------------------------------------------------------- transport

add("udp", "dns_query", b"\x00" + udp(40000, 53, dns("dig_a.query")))
add("udp", "connected_reply", b"\x01" + udp(53, 5353, dns("dig_a.response")))
add("udp", "no_checksum", b"\x02" + udp(9, 9999, b"hello"))

add("tcp_segment", "syn_every_option",
    tcp(40000, 80, 1000, 0, 0x02, options=b"\x02\x04\x05\xb4\x04\x02\x08\x0a\0\0\0\1\0\0\0\0\x01\x03\x03\x07"))
add("tcp_segment", "data_with_sack",
    tcp(40000, 80, 5000, 7000, 0x18, options=b"\x01\x01\x05\x12" + struct.pack(">IIII", 100, 200, 300, 400), payload=b"abc"))
add("tcp_segment", "unknown_and_bad_options", tcp(40000, 80, 1, 1, 0x10, options=b"\x1e\x04\xab\xcd\x03\x03\x0f\x00"))
add("tcp_segment", "rst", tcp(40000, 80, 1, 0, 0x04))
# Regression: MSS, timestamps and three SACK blocks packed into exactly 40 bytes (re-emitted,
# they overflowed the data offset before the fix in transport/src/tcp/segment.rs).
add("tcp_segment", "options_packed_to_40_bytes",
    tcp(40000, 80, 1, 2, 0x10, options=b"\x02\x04\x05\xb4\x08\x0a" + bytes(8) + b"\x05\x1a" + struct.pack(">6I", 100, 200, 300, 400, 500, 600)))
# The input with which the tcp_segment target found the same defect on its own (long run).
add("tcp_segment", "fuzzer_found_sack_overflow", base64.b64decode(
    "nEgAUAAbAAAAWKAY//8AAAEyAQEFGgAAAHHIAAADPwCgAv//AAAAAAIEBbQCBAgKAAAIAQAAAAABAwMHAFAAAAPoAAAAL6AC//8AAAAAAgQFtAIECAoAAAgBAAAAAAEB"))


def seg(flow, flags, dseq=0, dack=0, window=65535, options=b"", length=0):
    return bytes([0 | (flow << 7), flags]) + struct.pack(">hhH", dseq, dack, window) + bytes([len(options)]) + options + bytes([length])


MSS_WS_SACK_TS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\0\0\0\1\0\0\0\0\x01\x03\x03\x07"
handshake = seg(0, 0x02, options=MSS_WS_SACK_TS) + seg(0, 0x10)
add("tcp_connection", "passive_handshake_data_close",
    handshake + seg(0, 0x18, length=100) + b"\x03\x64" + b"\x02\x50" + seg(0, 0x11) + b"\x04\x00" + b"\x01\x80")
add("tcp_connection", "active_open_and_reset",
    b"\x05" + seg(1, 0x12, options=b"\x02\x04\x02\x18") + b"\x82\x20" + seg(1, 0x04))
add("tcp_connection", "retransmit_then_icmp",
    handshake + b"\x02\xff" + b"\x01\x64" + b"\x01\x64" + b"\x06\x02\x02\x40" + seg(0, 0x10, dack=-100))
add("tcp_connection", "out_of_order_and_window_probe",
    handshake + seg(0, 0x10, dseq=200, length=50) + seg(0, 0x10, dseq=400, length=50) + seg(0, 0x10, window=0) + b"\x02\x80\x01\xa0\x01\xa0")
add("tcp_connection", "simultaneous_close",
    handshake + b"\x04\x01" + seg(0, 0x11) + b"\x01\x7f" + b"\x01\xbc")

# ---------------------------------------------------------------- application

queries = [n for n in sorted(os.listdir(DNS_TESTDATA)) if n.endswith(".bin")]
for n in queries:
    add("dns_message", n[:-4], dns(n[:-4]))

for n in ["dig_a", "dig_cname", "dig_nx_noedns", "dig_mx", "kdig_srv_noedns"]:
    add("dns_resolver", n, b"\x00\x00" + b"\x01\x02" + chunk(dns(n + ".response")))
# A truncated answer, then the same over TCP.
tc = bytearray(dns("dig_a.response"))
tc[2] |= 0x02
add("dns_resolver", "truncated_then_tcp", b"\x00\x00\x01\x02" + chunk(tc) + b"\x05\x02\x02" + chunk(dns("dig_a.response")))
add("dns_resolver", "timeouts", b"\x00\x00\x03\x90\x05\x03\x90\x05\x03\xa0\x05")

for n in ["dig_a", "dig_cname", "dig_mx", "dig_txt"]:
    add("dns_cache", n, b"\x00\x00" + chunk(dns(n + ".response")) + b"\x01\x00\x02\x85\x01\x00\x02\xff\x01\x00")
add("dns_cache", "negative", b"\x00\x01" + chunk(dns("dig_nx_noedns.response")) + b"\x01\x00\x02\x90\x03\x00")

add("dns_tcp_framing", "two_queries", b"\x00" + chunk(dns("dig_a.query")) + chunk(dns("dig_mx.query")))
add("dns_tcp_framing", "pieces", b"\x03\x01\x05\x40" + chunk(dns("kdig_a.response")) + chunk(b"") + b"\x00")

ZONE = """; A zone with every feature the parser supports.
$ORIGIN example.test.
$TTL 1h
@   IN  SOA ns1 hostmaster.example.test. (
            2026112501 ; serial
            3600       ; refresh
            15m        ; retry
            1w         ; expire
            300 )      ; minimum
    IN  NS  ns1
    IN  NS  ns2.example.test.
    IN  MX  10 mail
ns1 60 IN A 192.0.2.53
ns2 IN 60 A 192.0.2.54
mail    A   192.0.2.25
        AAAA 2001:db8::25
www     CNAME @
txt     TXT "hello world" plain "semi;colon" "quote\\"d" "\\065\\066"
_sip._udp SRV 1 2 5060 sip
deep.a.b TXT "empty non-terminals above me"
opaque  TYPE65280 \\# 3 abcdef
"""
add("dns_zone", "every_feature", b"\x00" + ZONE.encode())
add("dns_zone", "origin_given", b"\x01" + b"$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww 60 A 192.0.2.1\n")
add("dns_zone", "non_ascii", b"\x01" + "$TTL 60\n@ SOA ns h 1 2 3 4 5\ncaf\u00e9 A 192.0.2.1\nw TXT \"\u00fcber \u2603\"\n".encode())
add("dns_zone", "parenthesised_error", b"\x00" + b"$ORIGIN t.\n$TTL 60\n@ SOA ns h (\n 1\n 2\n x\n 4 5 )\n")

for name, raw in [
    ("get_with_query", b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.test\r\nAccept:  */* \r\n\r\n"),
    ("absolute_form", b"GET http://h.test/p?q HTTP/1.1\r\nHost: h.test\r\n\r\n"),
    ("chunked_post", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
    ("length_post", b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"),
    ("smuggling_both", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("http10", b"GET / HTTP/1.0\r\n\r\n"),
]:
    add("http_request", name, b"\xff" + raw)

add("http_chunked", "two_chunks", b"\x00" + b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
add("http_chunked", "extensions_and_trailer", b"\x02\x03\x07" + b"4;ext=1\r\nWiki\r\n0\r\nExpires: never\r\n\r\nNEXT")
add("http_chunked", "upper_hex", b"\x01\x01" + b"A\r\n0123456789\r\n0\r\n\r\n")

add("ws_frame", "unmasked_hello", b"\x00" + b"\x81\x05Hello")
add("ws_frame", "masked_hello", b"\x03" + bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]))
add("ws_frame", "fragmented_and_ping", b"\x04" + b"\x01\x03Hel" + b"\x89\x00" + b"\x80\x02lo")
add("ws_frame", "len16_binary", b"\x10" + b"\x82\x7e\x01\x00" + bytes(256))
add("ws_frame", "close_masked", b"\x01" + b"\x88\x82\0\0\0\0\x03\xe8")

for target, files in seeds.items():
    d = os.path.join(HERE, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(files)} seeds")
