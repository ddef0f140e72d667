//! The `strom` binary as an operator meets it: bad flags, a taken port, an
//! unwritable data dir, a data dir of a newer store format and unknown
//! config keys exit non-zero with one clear line; SIGTERM stops it cleanly with exit code 0.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const STROM: &str = env!("CARGO_BIN_EXE_strom");

fn run(args: &[&str]) -> Output {
    Command::new(STROM)
        .args(args)
        .env_clear()
        .output()
        .expect("runs strom")
}

/// Asserts a failed start with exactly one line on stderr containing `needle`.
fn assert_one_line_failure(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exited 0; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr:?}");
}

#[test]
fn bad_flag() {
    assert_one_line_failure(&run(&["--no-such-flag"]), "--no-such-flag");
    assert_one_line_failure(&run(&["--num-partitions", "many"]), "many");
}

#[test]
fn unknown_or_invalid_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    assert_one_line_failure(
        &run(&["--data-dir", data, "--set", "no.such.key=1"]),
        "no.such.key",
    );
    assert_one_line_failure(
        &run(&["--data-dir", data, "--set", "num.partitions=0"]),
        "num.partitions",
    );
    let file = dir.path().join("server.properties");
    std::fs::write(&file, "num.partitions=2\nbogus.key=3\n").expect("write config");
    assert_one_line_failure(
        &run(&[
            "--data-dir",
            data,
            "--config",
            file.to_str().expect("utf-8"),
        ]),
        "bogus.key",
    );
}

#[test]
fn port_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(&[
        "--listen",
        &address,
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, &address);
}

#[test]
fn unwritable_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A regular file where the data dir should be: not creatable even as root.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let data = blocker.join("data");
    let output = run(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, "data dir");
}

#[test]
fn data_dir_of_a_newer_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        db.insert(
            strom::store::FORMAT_KEY,
            strom::store::versioned(&(strom::store::FORMAT_VERSION + 1).to_be_bytes()),
        )
        .expect("insert");
        db.flush().expect("flush");
    }
    let output = run(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, "written by a newer strom");
}

#[test]
fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(STROM)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("strom started"));
    assert!(started.is_some(), "no start line");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "strom did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("strom stopped")), "{rest:?}");
}
