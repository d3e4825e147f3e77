//! `File::rewind`, tokio's `AsyncSeekExt::rewind`: the offset back to 0 after buffered
//! writes are written, read-ahead dropped so the file is read as it is now.

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use support::{pattern, TempDir};

#[test]
fn rewind_reads_back_buffered_writes_from_the_start() {
    let dir = TempDir::new("rewind-writes");
    let path = dir.join("f");
    let data = pattern(200_000);
    overlap::block_on(async {
        let mut file = support::open_fresh(&path).await;
        // No flush: `rewind` writes the buffered bytes out first. (`AsyncSeekExt` is in
        // scope, as in a tokio program; the inherent method is the one called.)
        file.write_all(&data).await.unwrap();
        file.rewind().await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 0);
        let mut back = Vec::new();
        file.read_to_end(&mut back).await.unwrap();
        assert!(back == data);
        // Twice in a row, and after a partial read: always the start.
        file.rewind().await.unwrap();
        file.rewind().await.unwrap();
        let mut ten = [0u8; 10];
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten[..], &data[..10]);
        file.rewind().await.unwrap();
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten[..], &data[..10]);
        // A write after a rewind lands at 0, over the old bytes.
        file.rewind().await.unwrap();
        file.write_all(b"HEAD").await.unwrap();
        file.flush().await.unwrap();
    });
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..4], b"HEAD");
    assert!(on_disk[4..] == data[4..]);
}

#[test]
fn rewind_drops_read_ahead_so_another_handles_changes_are_seen() {
    let dir = TempDir::new("rewind-ahead");
    let path = dir.join("f");
    std::fs::write(&path, pattern(100_000)).unwrap();
    overlap::block_on(async {
        let mut reader = File::open(&path).await.unwrap();
        let mut one = [0u8; 1];
        // The read fetched far more than one byte ahead.
        reader.read_exact(&mut one).await.unwrap();
        // Another writer replaces the contents.
        std::fs::write(&path, b"new contents").unwrap();
        reader.rewind().await.unwrap();
        let mut now = String::new();
        reader.read_to_string(&mut now).await.unwrap();
        assert_eq!(now, "new contents");
    });
}
