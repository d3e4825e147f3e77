//! The loop keeps running timers and tasks while file jobs run on the pool.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::AsyncReadExt;
use support::{pattern, TempDir};

#[test]
fn ticker_keeps_ticking_during_big_reads() {
    let dir = TempDir::new("live-ticker");
    let path = dir.join("big");
    std::fs::write(&path, pattern(32 << 20)).unwrap();
    overlap::block_on(async {
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = overlap::spawn(async move {
            loop {
                overlap::time::sleep(Duration::from_millis(1)).await;
                t.set(t.get() + 1);
            }
        });
        let start = std::time::Instant::now();
        let mut rounds = 0;
        // Read for at least 200 ms, in whole-file reads and through `File`.
        while start.elapsed() < Duration::from_millis(200) || rounds < 2 {
            assert_eq!(fs::read(&path).await.unwrap().len(), 32 << 20);
            let mut file = File::open(&path).await.unwrap();
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            loop {
                let n = file.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, 32 << 20);
            rounds += 1;
        }
        ticker.abort();
        // ~1 tick per ms would be ideal; ask only that the ticker was not starved.
        let elapsed_ms = start.elapsed().as_millis() as u32;
        assert!(
            ticks.get() >= elapsed_ms / 20,
            "{} ticks in {elapsed_ms} ms",
            ticks.get()
        );
    });
}

/// A FIFO's open waits on a pool thread until a writer comes, as std's and tokio's do (a
/// server opening the paths its clients name would hang there); with `O_NONBLOCK`, as
/// `OpenOptions::open`'s docs say, it returns at once and the metadata says what it is.
#[overlap::test]
async fn a_fifo_open_waits_for_a_writer_and_o_nonblock_does_not() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt as _};
    let dir = TempDir::new("live-fifo");
    let path = dir.join("pipe");
    support::mkfifo(&path);
    let mut opts = fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK);
    let mut file = opts.open(&path).await.unwrap();
    assert!(file.metadata().await.unwrap().file_type().is_fifo());
    assert_eq!(
        file.read(&mut [0u8; 8]).await.unwrap(),
        0,
        "no writer: end of file"
    );
    drop(file);

    let plain = overlap::spawn({
        let path = path.clone();
        async move { File::open(&path).await }
    });
    support::settle().await;
    assert!(!plain.is_finished(), "waiting for a writer");
    // The waiting open is a reader, so a non-blocking open for writing finds it.
    let writer = support::within(
        Duration::from_secs(10),
        async {
            loop {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path)
                {
                    Ok(w) => break w,
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}");
                        overlap::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        },
        "a writer to find the reader",
    )
    .await;
    drop(writer);
    let file = plain.await.unwrap().unwrap();
    drop(file);
}
