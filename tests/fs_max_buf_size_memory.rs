//! `File::set_max_buf_size` lowered on a `File` that already grew its buffers: the buffers
//! it keeps shrink to the new size, so lowering it bounds a `File`'s memory as documented.
//! A counting global allocator measures the bytes held.

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::counting::{live, Counting};
use support::{pattern, TempDir};

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1 << 20;

/// One test, so that no other test's allocations are counted meanwhile.
#[test]
fn lowering_the_size_lets_the_grown_buffers_go() {
    read_buffers();
    write_buffers();
}

fn read_buffers() {
    let dir = TempDir::new("maxbuf-mem-read");
    let path = dir.join("f");
    let data = pattern(16 * MIB);
    std::fs::write(&path, &data).unwrap();
    drop(data);
    overlap::block_on(async {
        let mut buf = vec![0u8; 64 * 1024];
        let base = live();
        let mut file = File::open(&path).await.unwrap();
        // Sequential reads: the read-ahead grows to 2 MiB buffers.
        for _ in 0..(6 * MIB / buf.len()) {
            file.read_exact(&mut buf).await.unwrap();
        }
        assert!(live() - base > 2 * MIB, "the buffers grew");
        file.set_max_buf_size(4096);
        // Past what was fetched ahead with the old size.
        for _ in 0..(6 * MIB / buf.len()) {
            file.read_exact(&mut buf).await.unwrap();
        }
        let held = live().saturating_sub(base);
        assert!(
            held < MIB,
            "{held} bytes still held with a 4 KiB max_buf_size"
        );
    });
}

fn write_buffers() {
    let dir = TempDir::new("maxbuf-mem-write");
    overlap::block_on(async {
        let chunk = pattern(MIB);
        let base = live();
        let mut file = File::create(dir.join("f")).await.unwrap();
        for _ in 0..4 {
            file.write_all(&chunk).await.unwrap();
        }
        file.flush().await.unwrap();
        // A 1 MiB buffer (or two) kept for the next writes.
        let before = live().saturating_sub(base);
        assert!(before >= MIB, "{before} bytes held: the buffers grew");
        file.set_max_buf_size(4096);
        let lowered = live().saturating_sub(base);
        assert!(
            lowered < MIB / 4,
            "{before} bytes held before lowering the size, {lowered} right after"
        );
        for _ in 0..4 {
            file.write_all(&chunk[..64 * 1024]).await.unwrap();
        }
        file.flush().await.unwrap();
        let after = live().saturating_sub(base);
        assert!(
            after < MIB / 4,
            "{before} bytes held before lowering the size, {after} after"
        );
    });
}
