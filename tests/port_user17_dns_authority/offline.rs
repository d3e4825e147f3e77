//! The zone file and the wire format on their own, without sockets: the parser's errors
//! named by line, names compressed on encode, the decoder refusing loops and cut messages.

use crate::rig::{query, zone_text};
use crate::wire::{self, ty};
use crate::zone::Zone;

#[test]
fn the_zone_file_parses_and_its_errors_name_the_line() {
    let z = Zone::parse(&zone_text(7, 1)).unwrap();
    assert_eq!(
        (z.origin.as_str(), z.serial(), z.soa.ttl),
        ("example.test", 7, 300)
    );
    let cases = [
        ("web IN A 1.2.3.4\n", 1, "a record before $ORIGIN"),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\nw IN A 1.2.3\n",
            3,
            "bad IPv4",
        ),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\nw IN SRV 0 0 1 t\n",
            3,
            "unknown record type",
        ),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\nw IN TXT \"open\n",
            3,
            "unterminated",
        ),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\nw. IN A 1.2.3.4\n",
            3,
            "outside",
        ),
        ("$ORIGIN x.\nw IN A 1.2.3.4\n", 0, "no SOA"),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\nw CNAME v\nw A 1.2.3.4\n",
            0,
            "CNAME and",
        ),
        (
            "$ORIGIN x.\n@ IN SOA a b 1 2 3 4 5\n@ IN SOA a b 1 2 3 4 5\n",
            3,
            "one SOA",
        ),
    ];
    for (text, line, what) in cases {
        let e = Zone::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.what.contains(what), "{text:?}: {e}");
    }
}

#[test]
fn names_are_compressed_on_encode_and_read_back() {
    let z = Zone::parse(&zone_text(1, 1)).unwrap();
    let m = z.answer(&query(9, "example.test", ty::MX, None));
    let bytes = wire::encode(&m);
    // The question's name at 12; the answer's owner is a pointer to it.
    let qname_end = 12 + "example.test".len() + 2;
    assert_eq!(&bytes[qname_end + 4..qname_end + 6], &[0xc0, 0x0c]);
    // MX 10 mail: a label, then a pointer to "example.test".
    let mx = bytes
        .windows(7)
        .position(|w| w == b"\x00\x0a\x04mail")
        .unwrap();
    assert_eq!(&bytes[mx + 7..mx + 9], &[0xc0, 0x0c]);
    let back = wire::decode(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.additional.len(), 2, "mail's A and AAAA: {back:?}");
    // "example.test" written once, in the question; every other mention a pointer.
    let apex = b"\x07example\x04test\x00";
    assert_eq!(bytes.windows(apex.len()).filter(|w| w == apex).count(), 1);
    assert_eq!(bytes.windows(5).filter(|w| w == b"\x04mail").count(), 1);
}

#[test]
fn the_decoder_refuses_loops_cuts_and_trailing_bytes() {
    let header = |qd: u16| {
        let mut h = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
        h[4..6].copy_from_slice(&qd.to_be_bytes());
        h
    };
    let what = |bytes: &[u8]| wire::decode(bytes).unwrap_err();
    // A pointer to itself, at 12.
    let mut selfloop = header(1);
    selfloop.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(what(&selfloop).what, "compression pointer loop");
    assert_eq!(what(&selfloop).id, Some(0x1234));
    // Two names pointing at each other, through a label.
    let mut pair = header(1);
    pair.extend_from_slice(&[1, b'a', 0xc0, 0x10, 1, b'b', 0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(what(&pair).what, "compression pointer loop");
    // A pointer past the end, a cut header, a cut question, a byte too many.
    let mut past = header(1);
    past.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    assert_eq!(what(&past).what, "name cut short");
    assert_eq!(what(&header(1)[..7]).what, "header cut short");
    assert_eq!(what(&header(1)[..7]).id, Some(0x1234));
    assert_eq!(what(&[0x12, 0x34, 0x01]).id, None);
    assert_eq!(what(&header(1)).what, "name cut short");
    let mut extra = wire::encode(&query(1, "www.example.test", ty::A, None));
    extra.push(0);
    assert_eq!(what(&extra).what, "bytes after the last record");
    // A name of 64-byte labels past 255 bytes; a reserved label type.
    let mut long = header(1);
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(what(&long).what, "name longer than 255 bytes");
    let mut reserved = header(1);
    reserved.extend_from_slice(&[0x80, 0, 0, 1, 0, 1]);
    assert_eq!(what(&reserved).what, "reserved label type");
}
