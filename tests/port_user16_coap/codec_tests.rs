//! The codec's tests: every option form written byte for byte and read back, each
//! malformed form named, and the `UdpFramed` sink refusing a message the format cannot
//! carry, once.

use super::*;

#[test]
fn the_codec_writes_every_option_form_byte_exact_and_reads_it_back() {
    let long = vec![b'x'; 300];
    let msg = Message::new(Type::Con, code::POST, 0xbeef, &[1, 2, 3])
        .with_option(opt::URI_PATH, b"a".to_vec())
        .with_option(2000, vec![9])
        .with_option(opt::URI_PATH, b"b".to_vec())
        .with_option(opt::CONTENT_FORMAT, vec![])
        .with_option(opt::URI_QUERY, vec![b'q'; 13])
        .with_option(opt::OBSERVE, vec![])
        .with_option(40, long.clone())
        .with_payload(b"hi");
    let bytes = encode(&msg);
    let mut want = vec![0x43, 0x02, 0xbe, 0xef, 1, 2, 3];
    want.extend([0x60]); // Observe (6): delta 6, empty
    want.extend([0x51, b'a', 0x01, b'b']); // Uri-Path (11) twice, in the order given
    want.extend([0x10]); // Content-Format (12): delta 1, empty
    want.extend([0x3d, 0]); // Uri-Query (15): delta 3, length 13 + 0
    want.extend(vec![b'q'; 13]);
    want.extend([0xde, 25 - 13, 0, 31]); // 40: delta 13 + 12, length 269 + 31
    want.extend(&long);
    want.extend([0xe1, 0x06, 0x9b, 9]); // 2000: delta 269 + 0x069b, length 1
    want.extend([0xff, b'h', b'i']);
    assert_eq!(bytes, want);
    // Read back: the options now in number order, repeated ones in theirs.
    let back = parse(&bytes).unwrap();
    let numbers: Vec<u16> = back.options.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [6, 11, 11, 12, 15, 40, 2000]);
    assert_eq!(
        (back.path(), back.option(40).unwrap()),
        ("a/b".into(), &long[..])
    );
    assert_eq!(
        (back.mid, &back.token[..], &back.payload[..]),
        (0xbeef, &[1, 2, 3][..], &b"hi"[..])
    );
    // uint options: minimal bytes; Block2's fields.
    let b = Block {
        num: 300,
        more: true,
        szx: 6,
    };
    assert_eq!(message::uint_bytes(b.to_uint()), [0x12, 0xce]);
    assert_eq!((Block::from_uint(b.to_uint()), b.size()), (b, 1024));
    assert_eq!(message::uint_bytes(0), Vec::<u8>::new());
}

#[test]
fn the_codec_names_each_malformed_form() {
    let con = |rest: &[u8]| [&[0x40, 0x01, 0x12, 0x34][..], rest].concat();
    let hdr = Some((Type::Con, 0x1234));
    type Case = (Vec<u8>, Fault, Option<(Type, u16)>);
    let cases: Vec<Case> = vec![
        (vec![0x40, 0x01, 0x12], Fault::Short, None),
        (vec![0x80, 0x01, 0x12, 0x34], Fault::BadVersion(2), None),
        (
            vec![0x49, 0x01, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            Fault::TokenTooLong(9),
            hdr,
        ),
        (
            vec![0x54, 0x01, 0x12, 0x34, 1, 2],
            Fault::TruncatedToken,
            Some((Type::Non, 0x1234)),
        ),
        (con(&[0xf1, 0]), Fault::ReservedDelta, hdr),
        (con(&[0xbf]), Fault::ReservedLength, hdr),
        (con(&[0xb5, b'a', b'b']), Fault::TruncatedOption, hdr),
        (con(&[0xd1]), Fault::TruncatedOption, hdr),
        (con(&[0xe0, 0xff]), Fault::TruncatedOption, hdr),
        (
            con(&[0xe0, 0xff, 0xff, 0xe0, 0xff, 0xff]),
            Fault::OptionOverflow,
            hdr,
        ),
        (con(&[0xff]), Fault::EmptyPayload, hdr),
        (
            vec![0x61, 0x00, 0x12, 0x34, 7],
            Fault::NonEmptyEmpty,
            Some((Type::Ack, 0x1234)),
        ),
    ];
    for (bytes, fault, header) in cases {
        assert_eq!(
            parse(&bytes),
            Err(FormatError { fault, header }),
            "{bytes:x?}"
        );
    }
    // And a 9-byte token is refused on the way out, before anything is written.
    let mut buf = BytesMut::new();
    let err = codec::write(&Message::new(Type::Con, code::GET, 1, &[0; 9]), &mut buf).unwrap_err();
    assert_eq!(
        (err.kind(), buf.len()),
        (std::io::ErrorKind::InvalidInput, 0)
    );
}

#[overlap::test]
async fn the_framed_sink_refuses_a_bad_message_once_and_goes_on() {
    let peer = RawPeer::bind("127.0.0.1").await;
    let mut framed = UdpFramed::new(UdpSocket::bind("127.0.0.1:0").await.unwrap(), CoapCodec);
    let bad = Message::new(Type::Non, code::GET, 1, &[0; 10]);
    match framed.send((bad, peer.addr)).await {
        Err(CoapError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("{other:?}"),
    }
    for mid in 2..5 {
        framed
            .feed((Message::empty(Type::Rst, mid), peer.addr))
            .await
            .unwrap();
    }
    framed.flush().await.unwrap();
    for mid in 2..5 {
        assert_eq!(peer.recv().await.0, Message::empty(Type::Rst, mid));
    }
    assert!(!peer.has_datagram());
}
