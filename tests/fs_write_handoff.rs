//! Bytes a `File` accepts while a write job runs are handed to that job (`Handoff`), which
//! writes them after its own before it ends. These tests try to break that: hand-offs mixed
//! with reads, seeks, positional writes, truncations, cancelled futures, `max_buf_size`
//! changes and runtimes dropped with a job queued, each checked against a model of the
//! file's bytes; refused batches (`RLIMIT_FSIZE` and a seccomp filter, in a child); and a
//! pipe. The memory the hand-offs hold is `fs_write_handoff_memory`'s.

mod support;

use std::io::{ErrorKind, SeekFrom};
use std::path::Path;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{
    hold_pool, one_thread_pool, pattern, pattern_seeded, poll_once, poll_once_then_drop, within,
    Rng, TempDir,
};

const GUARD: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

/// A std file opened read-write on `path`.
fn open_std(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// What the file should hold, and where the `File`'s position is.
struct Model {
    bytes: Vec<u8>,
    pos: usize,
}

impl Model {
    fn put(&mut self, at: usize, data: &[u8]) {
        let end = at + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[at..end].copy_from_slice(data);
    }

    fn write(&mut self, data: &[u8]) {
        self.put(self.pos, data);
        self.pos += data.len();
    }
}

/// One scenario: a `File` on a file holding `initial` bytes, driven through `segments`
/// runtimes of `steps` random operations each. A segment may end with the pool held, so
/// its runtime is dropped with a write job (and hand-offs) queued; the `File` goes on in
/// the next runtime. After every `flush`, and at the end, the file must equal the model.
fn run_scenario(seed: u64, segments: usize, steps: usize) {
    let dir = TempDir::new("handoff-model");
    let path = dir.join("f");
    let initial = pattern_seeded(5000, seed as u32);
    std::fs::write(&path, &initial).unwrap();
    let mut model = Model {
        bytes: initial,
        pos: 0,
    };
    let mut rng = Rng(seed);
    let mut file = File::from_std(open_std(&path));
    for segment in 0..segments {
        let rt = one_thread_pool();
        let mut held = None;
        rt.block_on(async {
            for step in 0..steps {
                let what = format!("seed {seed}, segment {segment}, step {step}");
                random_step(&mut file, &mut model, &mut rng, &mut held, &path, &what).await;
            }
        });
        // Dropped with the pool perhaps held: queued write jobs write on the drop.
        drop(rt);
        drop(held);
    }
    let rt = one_thread_pool();
    if seed % 2 == 0 {
        rt.block_on(async { within(GUARD, file.flush(), "the last flush").await.unwrap() });
        drop(file);
    } else {
        // Unflushed: the drop never loses accepted bytes, and the runtime's drop waits for
        // the job writing them.
        drop(file);
    }
    drop(rt);
    let got = std::fs::read(&path).unwrap();
    assert_same(&got, &model.bytes, &format!("seed {seed}, at the end"));
}

/// Compares file bytes with the model, naming the first difference.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: the file holds {} bytes, the model {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// One random operation on `file`, mirrored in `model`. While the pool is held, only
/// operations that never wait for a job are made (writes polled once, `set_max_buf_size`,
/// a flush polled once and dropped); the others release the pool first.
async fn random_step(
    file: &mut File,
    model: &mut Model,
    rng: &mut Rng,
    held: &mut Option<mpsc::Sender<()>>,
    path: &Path,
    what: &str,
) {
    let max = file.max_buf_size();
    // Bounded by the batch size, so a 1-byte batch does not make a step of a million jobs.
    let len = 1 + rng.below((4 * max).min(300_000) + 100);
    let data = pattern_seeded(len, rng.next() as u32);
    let op = rng.below(14);
    if held.is_some() && op >= 5 {
        *held = None;
    }
    match op {
        // A write polled once: it accepts some bytes at once, or waits and is dropped,
        // having accepted none.
        0..=2 => match poll_once(file.write(&data)).await {
            Poll::Ready(n) => {
                let n = n.unwrap_or_else(|e| panic!("{what}: write: {e}"));
                assert!(n >= 1 && n <= len, "{what}: {n} of {len} bytes accepted");
                model.write(&data[..n]);
            }
            Poll::Pending => {}
        },
        3 => {
            const SIZES: [usize; 7] = [1, 2, 64, 1000, 4096, 65536, 2 * MIB];
            file.set_max_buf_size(SIZES[rng.below(SIZES.len())]);
        }
        4 => {
            if held.is_none() {
                *held = Some(hold_pool());
            } else {
                poll_once_then_drop(file.flush()).await;
            }
        }
        5 | 6 => {
            within(GUARD, file.write_all(&data), what).await.unwrap();
            model.write(&data);
        }
        7 => {
            within(GUARD, file.flush(), what).await.unwrap();
            let got = std::fs::read(path).unwrap();
            assert_same(&got, &model.bytes, &format!("{what}: after a flush"));
        }
        8 => {
            let end = model.bytes.len();
            let pos = match rng.below(3) {
                0 => SeekFrom::Start(rng.below(end + 100) as u64),
                1 => SeekFrom::Current(rng.below(end + 100) as i64 - model.pos as i64),
                _ => SeekFrom::End(-(rng.below(end + 1) as i64)),
            };
            let at = within(GUARD, file.seek(pos), what).await.unwrap();
            model.pos = match pos {
                SeekFrom::Start(n) => n as usize,
                SeekFrom::Current(n) => (model.pos as i64 + n) as usize,
                SeekFrom::End(n) => (end as i64 + n) as usize,
            };
            assert_eq!(at, model.pos as u64, "{what}: seek {pos:?}");
        }
        9 | 10 => {
            let left = model.bytes.len().saturating_sub(model.pos);
            let mut buf = vec![0u8; rng.below(left.min(200_000) + 1).max(1)];
            let n = within(GUARD, file.read(&mut buf), what).await.unwrap();
            let want = &model.bytes[model.pos.min(model.bytes.len())..];
            assert!(n <= want.len(), "{what}: read {n} of {}", want.len());
            assert!(buf[..n] == want[..n], "{what}: read bytes differ");
            assert_eq!(n == 0, want.is_empty(), "{what}: read {n}");
            model.pos += n;
        }
        11 => {
            let at = rng.below(model.bytes.len() + 50);
            let n = data.len().min(10_000);
            within(GUARD, file.write_all_at(&data[..n], at as u64), what)
                .await
                .unwrap();
            model.put(at, &data[..n]);
        }
        12 => {
            let size = rng.below(model.bytes.len() + 2000);
            within(GUARD, file.set_len(size as u64), what)
                .await
                .unwrap();
            model.bytes.resize(size, 0);
        }
        _ => within(GUARD, file.sync_all(), what).await.unwrap(),
    }
}

/// Random interleavings of writes (some cancelled), flushes, seeks, reads, positional
/// writes, truncations, `sync_all`, `max_buf_size` changes and runtimes dropped with the
/// pool held, from a fixed list of seeds.
#[test]
fn random_sequences_match_the_model() {
    for seed in [1, 2, 3, 7, 42, 99, 1234, 0xdead_beef] {
        run_scenario(seed, 5, 40);
    }
}

/// Hand-offs are made while the one job in flight waits in the queue; a write polled
/// while they are full waits, and dropped then, it has accepted nothing: the file holds
/// the job's bytes, the handed ones and what came after, with no byte of the dropped one.
#[test]
fn a_write_dropped_while_hand_offs_are_full_accepts_nothing() {
    let dir = TempDir::new("handoff-cancel");
    let path = dir.join("f");
    one_thread_pool().block_on(async {
        let mut file = File::from_std(std::fs::File::create(&path).unwrap());
        file.set_max_buf_size(64);
        let held = hold_pool();
        assert_eq!(
            file.write(&[b'a'; 40]).await.unwrap(),
            32,
            "the job's batch"
        );
        assert_eq!(file.write(&[b'b'; 40]).await.unwrap(), 32, "handed to it");
        assert_eq!(
            poll_once(file.write(b"dropped")).await.map(|r| r.unwrap()),
            Poll::Pending,
            "the hand-offs are full"
        );
        drop(held);
        file.write_all(b"tail").await.unwrap();
        within(GUARD, file.flush(), "flush").await.unwrap();
    });
    let mut want = vec![b'a'; 32];
    want.extend_from_slice(&[b'b'; 32]);
    want.extend_from_slice(b"tail");
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

/// A runtime dropped while the write job and its hand-offs wait in the queue: the job's
/// destructor writes both, in order, and the same `File`, in a new runtime, goes on from
/// after them, handing to its next job again.
#[test]
fn a_file_goes_on_after_its_runtime_dropped_a_queued_job() {
    let dir = TempDir::new("handoff-rt-drop");
    let path = dir.join("f");
    let mut file = File::from_std(std::fs::File::create(&path).unwrap());
    let rt = one_thread_pool();
    let held = rt.block_on(async {
        let held = hold_pool();
        file.write_all(b"first ").await.unwrap();
        file.write_all(b"second ").await.unwrap();
        held
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"", "nothing ran yet");
    drop(rt);
    drop(held);
    assert_eq!(std::fs::read(&path).unwrap(), b"first second ");
    one_thread_pool().block_on(async {
        let held = hold_pool();
        file.write_all(b"third ").await.unwrap();
        file.write_all(b"fourth").await.unwrap();
        drop(held);
        within(GUARD, file.flush(), "flush").await.unwrap();
        // Flushed, nothing read: the std file is free to take.
        let mut std = file.try_into_std().expect("nothing in flight");
        std::io::Write::write_all(&mut std, b"!").unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"first second third fourth!");
}

/// A write job blocked in a pipe when its runtime shuts down (not waited for: the
/// shutdown's timeout passes) still takes the bytes the `File` accepts in the next
/// runtime: every byte arrives, in order, and `flush` there returns once they have.
#[test]
fn a_job_left_running_by_a_shut_down_runtime_takes_later_hand_offs() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let head = pattern(200_000); // past the pipe's 64 KiB: the job blocks in it
    let mut file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(writer)));
    let rt = one_thread_pool();
    rt.block_on(async {
        file.write_all(&head).await.unwrap();
        file.write_all(b"handed in the first runtime;")
            .await
            .unwrap();
    });
    rt.shutdown_timeout(Duration::from_millis(10));
    let expected = head.len() + 28 + 29;
    let reading = std::thread::spawn(move || {
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut back).map(|_| back)
    });
    one_thread_pool().block_on(async {
        file.write_all(b"handed in the second runtime")
            .await
            .unwrap();
        file.write_all(b"!").await.unwrap();
        within(GUARD, file.flush(), "flush").await.unwrap();
        drop(file); // the pipe's last writer: the reader sees its end
    });
    let back = reading.join().unwrap().unwrap();
    assert_eq!(back.len(), expected);
    assert!(back[..head.len()] == head[..]);
    assert_eq!(
        &back[head.len()..],
        b"handed in the first runtime;handed in the second runtime!"
    );
}

/// Reads between hand-offs on a read-write file: the read waits for the job (and its
/// hand-offs), read-ahead is taken back before the next write, and that write lands at
/// the reader's position, not the fd's.
#[test]
fn reads_and_writes_alternate_around_hand_offs() {
    let dir = TempDir::new("handoff-read");
    let path = dir.join("f");
    let old = pattern(300_000);
    std::fs::write(&path, &old).unwrap();
    let mut want = old.clone();
    one_thread_pool().block_on(async {
        let mut file = File::from_std(open_std(&path));
        let mut ten = [0u8; 10];
        file.read_exact(&mut ten).await.unwrap(); // fetches far ahead of byte 10
        assert_eq!(ten, old[..10]);
        let held = hold_pool();
        file.write_all(b"AAAA").await.unwrap(); // at 10, after the read-ahead goes back
        file.write_all(b"BBBB").await.unwrap(); // handed: at 14
        drop(held);
        file.read_exact(&mut ten).await.unwrap(); // from 18, after both
        assert_eq!(ten, old[18..28]);
        file.write_all(b"CC").await.unwrap(); // at 28
        file.rewind().await.unwrap();
        let mut back = Vec::new();
        file.read_to_end(&mut back).await.unwrap();
        want[10..18].copy_from_slice(b"AAAABBBB");
        want[28..30].copy_from_slice(b"CC");
        assert!(back == want, "read back differs");
    });
    assert!(std::fs::read(&path).unwrap() == want);
}

/// Positional writes, `set_len`, `send_to` and `try_clone` after hand-offs come after them:
/// each waits for the job and everything handed to it.
#[test]
fn positional_and_whole_file_operations_come_after_hand_offs() {
    let dir = TempDir::new("handoff-positional");
    let path = dir.join("f");
    std::fs::write(&path, b"").unwrap();
    one_thread_pool().block_on(async {
        let mut file = File::from_std(open_std(&path));
        let held = hold_pool();
        file.write_all(b"0123456789").await.unwrap();
        file.write_all(b"abcdefghij").await.unwrap(); // handed
        drop(held);
        file.write_all_at(b"XY", 12).await.unwrap(); // over the handed bytes
        let held = hold_pool();
        file.write_all(b"klmno").await.unwrap();
        file.write_all(b"pqrst").await.unwrap(); // handed
        drop(held);
        file.set_len(28).await.unwrap(); // cuts the handed bytes' tail
        let (a, mut b) = overlap::net::UnixStream::pair().unwrap();
        assert_eq!(file.send_to(&a, 0, 100).await.unwrap(), 28);
        let mut sent = vec![0u8; 28];
        b.read_exact(&mut sent).await.unwrap();
        assert_eq!(sent, b"0123456789abXYefghijklmnopqr");
        let held = hold_pool();
        file.write_all(b"!").await.unwrap(); // at 30: a hole at 28 and 29
        file.write_all(b"?").await.unwrap(); // handed
        drop(held);
        let mut clone = file.try_clone().await.unwrap();
        clone.write_all(b"#").await.unwrap();
        clone.flush().await.unwrap();
    });
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"0123456789abXYefghijklmnopqr\0\0!?#"
    );
}

/// A pipe (no offset, no read-ahead taken back) fed many writes of mixed sizes while the
/// batch size changes under them, then dropped unflushed: the reader gets every byte, in
/// order, and then the end of the pipe (the fd closed once the job ended).
#[test]
fn a_pipe_gets_every_handed_byte_in_order_and_then_its_end() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let reading = std::thread::spawn(move || {
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut back).map(|_| back)
    });
    let mut rng = Rng(77);
    let mut sent = Vec::new();
    one_thread_pool().block_on(async {
        let mut file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(writer)));
        for i in 0..400 {
            if i % 50 == 0 {
                file.set_max_buf_size([100, 2 * MIB, 7, 65536][i / 50 % 4]);
            }
            let data = pattern_seeded(1 + rng.below(20_000), i as u32);
            let n = within(GUARD, file.write(&data), "write").await.unwrap();
            sent.extend_from_slice(&data[..n]);
        }
        drop(file);
    });
    let back = reading.join().unwrap().unwrap();
    assert_same(&back, &sent, "the pipe");
}

/// Lowering `max_buf_size` while a job holds hand-offs made under the old size: the next
/// write waits until they are written, then accepts no more than half the new size.
#[test]
fn lowering_the_size_mid_stream_bounds_the_next_hand_off() {
    let dir = TempDir::new("handoff-lowered");
    let path = dir.join("f");
    let data = pattern(3 * MIB);
    one_thread_pool().block_on(async {
        let mut file = File::from_std(std::fs::File::create(&path).unwrap());
        let held = hold_pool();
        assert_eq!(file.write(&data).await.unwrap(), MIB);
        assert_eq!(file.write(&data[MIB..]).await.unwrap(), MIB, "handed");
        file.set_max_buf_size(100);
        assert!(
            poll_once(file.write(&data[2 * MIB..])).await.is_pending(),
            "1 MiB handed is past the new cap of 50"
        );
        drop(held);
        let n = within(GUARD, file.write(&data[2 * MIB..]), "write")
            .await
            .unwrap();
        assert_eq!(n, 50);
        file.write_all(&data[2 * MIB + 50..]).await.unwrap();
        within(GUARD, file.flush(), "flush").await.unwrap();
    });
    assert!(std::fs::read(&path).unwrap() == data);
}

/// Sets the soft file size limit to `soft`, ignoring `SIGXFSZ` so a write past it fails
/// with `EFBIG` instead of ending the process.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

/// The limit is crossed inside the handed bytes, not the job's own: the file keeps what
/// came before the refused byte, the rest of the hand-offs go with the one error, reported
/// once, and the next write goes on from the fd's offset once the limit is lifted.
#[test]
fn a_refused_hand_off_drops_what_follows_and_is_reported_once() {
    let name = "a_refused_hand_off_drops_what_follows_and_is_reported_once";
    support::run_in_child(name, || {
        let dir = TempDir::new(name);
        let path = dir.join("f");
        set_fsize(300);
        one_thread_pool().block_on(async {
            let mut file = File::from_std(std::fs::File::create(&path).unwrap());
            let held = hold_pool();
            file.write_all(&[b'A'; 200]).await.unwrap(); // the job's own
            file.write_all(&[b'B'; 200]).await.unwrap(); // handed: crosses 300
            file.write_all(&[b'C'; 50]).await.unwrap(); // handed: past the refusal
            drop(held);
            let err = within(GUARD, file.flush(), "flush").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
            within(GUARD, file.flush(), "flush").await.unwrap();
            let lift = overlap::spawn_blocking(|| set_fsize(libc::RLIM_INFINITY));
            lift.await.unwrap();
            file.write_all(b"D").await.unwrap();
            within(GUARD, file.flush(), "flush").await.unwrap();
        });
        let mut want = vec![b'A'; 200];
        want.extend_from_slice(&[b'B'; 100]);
        want.push(b'D');
        assert_eq!(std::fs::read(&path).unwrap(), want);
    });
}

/// A job refused before its first byte (its `lseek` back over the read-ahead fails, by a
/// seccomp filter on this fd, in a child): the bytes handed to it would land at the fd's
/// offset, past the read-ahead, so they go with the one error; the file is unchanged.
#[test]
fn a_job_refused_before_its_first_byte_drops_its_hand_offs() {
    let name = "a_job_refused_before_its_first_byte_drops_its_hand_offs";
    support::run_in_child(name, || {
        let dir = TempDir::new(name);
        let path = dir.join("f");
        let old = pattern(100_000);
        std::fs::write(&path, &old).unwrap();
        one_thread_pool().block_on(async {
            let std = open_std(&path);
            let fd = std::os::fd::AsRawFd::as_raw_fd(&std);
            let mut file = File::from_std(std);
            let mut ten = [0u8; 10];
            file.read_exact(&mut ten).await.unwrap(); // the fd's offset is far past 10
            within(GUARD, file.sync_all(), "sync_all").await.unwrap(); // no job in flight
            support::seccomp::install(&[support::seccomp::rule_arg0(
                libc::SYS_lseek,
                fd as u32,
                libc::EIO,
            )]);
            let held = hold_pool();
            file.write_all(b"own").await.unwrap(); // the job: lseek back, then write
            file.write_all(b"handed").await.unwrap();
            drop(held);
            let err = within(GUARD, file.flush(), "flush").await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
            within(GUARD, file.flush(), "flush").await.unwrap();
            assert!(std::fs::read(&path).unwrap() == old, "the file changed");
        });
    });
}
