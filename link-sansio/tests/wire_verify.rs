//! The frame-checking tool: `wire::inspect` over the reference transcript, and the
//! `verify` example run as a real process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use link_sansio::wire::{self, DropReason, HashAlgo, Key, Limits, Value, json};

const SECRET: &str = "interop-secret";

/// The `text` of every transcript frame.
fn transcript() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/transcript.jsonl");
    std::fs::read_to_string(path)
        .expect("transcript")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).expect("row");
            row["text"].as_str().expect("text").to_owned()
        })
        .collect()
}

/// A transcript frame with one signed value changed and the signature kept.
fn tampered(frame: &str) -> String {
    let out = frame.replacen("\"ts\":1", "\"ts\":2", 1);
    assert_ne!(out, frame);
    out
}

#[test]
fn inspect_accepts_every_transcript_frame_and_returns_what_was_signed() {
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let frames = transcript();
    assert!(frames.len() > 50);
    for frame in &frames {
        let canonical = wire::inspect(frame.as_bytes(), &key, &Limits::default())
            .unwrap_or_else(|e| panic!("{e}: {frame}"));
        // The canonical text is the frame without `sig`, keys sorted: re-signing it
        // gives the frame's own signature.
        let sig = json::parse(frame.as_bytes())
            .expect("json")
            .get("sig")
            .and_then(Value::as_str)
            .expect("sig")
            .to_owned();
        assert_eq!(key.sign_hex(&canonical), sig);
        let mut obj = json::parse(frame.as_bytes())
            .expect("json")
            .as_object()
            .expect("object")
            .clone();
        obj.remove("sig");
        assert_eq!(canonical, Value::Object(obj).to_canonical());
    }
}

#[test]
fn inspect_names_the_drop_reason() {
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let limits = Limits::default();
    let frame = &transcript()[0];
    let check = |bytes: &[u8]| wire::inspect(bytes, &key, &limits).map(|_| ());
    assert_eq!(
        check(tampered(frame).as_bytes()),
        Err(DropReason::BadSignature)
    );
    assert_eq!(check(b"{nope"), Err(DropReason::ParseError));
    assert_eq!(check(br#"{"v":1}"#), Err(DropReason::MissingId));
    let wrong = Key::new("not-the-secret", HashAlgo::Sha256);
    assert_eq!(
        wire::inspect(frame.as_bytes(), &wrong, &limits).map(|_| ()),
        Err(DropReason::BadSignature)
    );
    // Old frames are fine: no replay window. A frame from 1970 verifies.
    let mut out = Vec::new();
    let header = wire::Header {
        id: "old".into(),
        ts: 0.0,
        from: None,
        to: None,
    };
    wire::encode(&key, &header, "direct", None, &mut out);
    assert!(wire::inspect(&out, &key, &limits).is_ok());
}

/// The `verify` example's executable. `cargo test` builds examples before running
/// tests; when only this test target was built, build the example now.
fn example_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_or_build_example).clone()
}

fn find_or_build_example() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/wire_verify-<hash> → target/<profile>/examples/verify
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir
        .join("examples")
        .join(format!("verify{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "link-sansio", "--example", "verify"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the verify example failed");
    }
    assert!(bin.exists(), "no example binary at {}", bin.display());
    bin
}

fn run_example(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(example_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("example starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("example finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf8 stdout"),
        String::from_utf8(out.stderr).expect("utf8 stderr"),
    )
}

#[test]
fn the_verify_example_prints_one_line_per_frame() {
    let frames = transcript();
    let mut input = frames.join("\n");
    input.push_str("\n\n");
    input.push_str(&tampered(&frames[0]));
    input.push_str("\r\nnot json\n");
    input.push_str(r#"{"v":1,"ts":1}"#);
    let (code, out, err) = run_example(&["--secret", SECRET], &input);
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), frames.len() + 3, "blank line skipped: {out}");
    assert!(lines[..frames.len()].iter().all(|l| *l == "ok"), "{out}");
    assert_eq!(
        &lines[frames.len()..],
        ["bad-signature", "parse-error", "missing-id"]
    );
}

#[test]
fn the_verify_example_prints_the_canonical_text() {
    let frame = &transcript()[0];
    let (code, out, err) = run_example(
        &["--canonical", "--algo", "sha256", "--secret", SECRET],
        frame,
    );
    assert_eq!(code, 0, "stderr: {err}");
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let canonical = wire::inspect(frame.as_bytes(), &key, &Limits::default()).expect("ok");
    assert_eq!(
        out,
        format!("ok\t{}\n", String::from_utf8(canonical).expect("utf8"))
    );
    // Another algorithm is another key: the same frame fails.
    let (_, out, _) = run_example(&["--secret", SECRET, "--algo", "sha512"], frame);
    assert_eq!(out, "bad-signature\n");
}

#[test]
fn the_verify_example_refuses_bad_arguments() {
    for args in [
        &[][..],
        &["--secret"][..],
        &["--secret", "s", "--algo", "md5"][..],
        &["--secret", "s", "--frobnicate"][..],
    ] {
        let (code, out, err) = run_example(args, "");
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.contains("usage: verify"), "{err}");
    }
}
