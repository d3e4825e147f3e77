//! A `File::send_to` dropped while its `sendfile` run is in flight, then called again on
//! the same file and socket. The dropped run finishes in the background (documented); the
//! next call must wait for it, or the two runs, on two pool threads, send into the socket
//! at once and mix their bytes. A thread drains the socket meanwhile, so the dropped run
//! keeps going; it took a few rounds of these to see the mix before `send_to` waited.

mod support;

use std::io::Read;
use std::time::Duration;

use overlap::net::UnixStream;
use support::{pattern, within, ManualTask, TempDir};

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn send_to_after_a_dropped_one_does_not_interleave() {
    let dir = TempDir::new("cancel-send-to");
    let path = dir.join("data");
    let data = pattern(4 << 20);
    std::fs::write(&path, &data).unwrap();
    for round in 0..300 {
        let (near, far) = std::os::unix::net::UnixStream::pair().unwrap();
        let drain = std::thread::spawn(move || {
            let mut got = Vec::new();
            (&far).read_to_end(&mut got).unwrap();
            got
        });
        near.set_nonblocking(true).unwrap();
        let x = UnixStream::from_std(near).unwrap();
        let mut file = overlap::fs::File::open(&path).await.unwrap();
        within(HANG, x.writable(), "never writable").await.unwrap();
        let task = ManualTask::default();
        let mut first = Box::pin(file.send_to(&x, 0, data.len() as u64));
        assert!(task.poll(first.as_mut()).is_pending());
        drop(first); // its run goes on while the drain thread reads
        let second = 256 << 10;
        let sent = within(HANG, file.send_to(&x, 0, second as u64), "stalled").await;
        assert_eq!(sent.unwrap(), second as u64);
        drop((x, file));
        let got = drain.join().unwrap();
        let k = got.len() - second;
        assert!(
            got[..k] == data[..k] && got[k..] == data[..second],
            "round {round}: the second send's bytes interleaved with the dropped one's ({} bytes)",
            got.len()
        );
    }
}
