//! A real NBD client against the server: qemu-img (when installed) copies an image into
//! an export over the Unix socket (its zero runs as WRITE_ZEROES), reads it back out over
//! TCP, and reports the export's size.

use overlap::process::Command;

use super::server::{Config, End};
use super::support::{pattern_seeded, until};
use super::{Rig, MIB};

async fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img").args(args).output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[overlap::test]
async fn qemu_img_copies_an_image_in_and_out() {
    if !std::path::Path::new("/usr/bin/qemu-img").exists() {
        eprintln!("qemu-img not installed: nothing to check");
        return;
    }
    let rig = Rig::new("nbd-qemu", Config::default()).await;
    let path = rig.export("disk", &vec![0xff; 4 * MIB], false);
    let mut image = pattern_seeded(4 * MIB, 11);
    image[MIB..2 * MIB].fill(0);
    let src = rig.dir.join("src.raw");
    std::fs::write(&src, &image).unwrap();
    let unix = format!("nbd+unix:///disk?socket={}", rig.sock.display());
    let tcp = format!("nbd://{}/disk", rig.addr);
    let src_s = src.to_str().unwrap();
    qemu_img(&["convert", "-n", "-f", "raw", "-O", "raw", src_s, &unix]).await;
    assert!(
        std::fs::read(&path).unwrap() == image,
        "the image written in"
    );
    // The zero run came as WRITE_ZEROES (or TRIM) that may leave a hole, and did.
    let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap());
    assert!(blocks * 512 <= 3 * MIB as u64, "{blocks} blocks");
    let out = rig.dir.join("out.raw");
    let out_s = out.to_str().unwrap();
    qemu_img(&["convert", "-f", "raw", "-O", "raw", &tcp, out_s]).await;
    assert!(std::fs::read(&out).unwrap() == image, "the image read out");
    let info = qemu_img(&["info", "--output=json", "-f", "raw", &tcp]).await;
    assert!(info.contains("\"virtual-size\": 4194304"), "{info}");
    let stats = rig.server.stats();
    until(
        || stats.connections.get() == 0,
        "qemu-img's connections closed",
    )
    .await;
    // qemu-img ends each connection with NBD_CMD_DISC.
    let ends = stats.ends.borrow();
    assert!(
        ends.len() >= 3 && ends.iter().all(|e| *e == End::Disconnect),
        "{ends:?}"
    );
    assert!(stats.writes_done.get() > 0);
    assert_eq!(rig.fds_inside(), 0);
}
