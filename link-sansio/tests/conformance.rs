//! The Node.js reference's vectors, reproduced byte for byte.

use std::path::{Path, PathBuf};

use link_sansio::wire::{self, HashAlgo, Key, Limits, Message, Value, json};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn lines(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(vectors_dir().join(name)).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("vector line is JSON"))
        .collect()
}

fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} in {v}"))
}

/// Runs every canonical/signature vector of `file`, returning how many ran.
fn check_vectors(file: &str) -> usize {
    let rows = lines(file);
    for (n, row) in rows.iter().enumerate() {
        let input = s(row, "input");
        let algo: HashAlgo = s(row, "algo").parse().expect("algo");
        let key = Key::new(s(row, "secret"), algo);
        let value = json::parse(input.as_bytes())
            .unwrap_or_else(|e| panic!("{file}:{} input {input:?}: {e}", n + 1));
        let canonical = value.to_canonical();
        assert_eq!(
            String::from_utf8_lossy(&canonical),
            s(row, "canonical"),
            "{file}:{} canonical of {input:?}",
            n + 1
        );
        assert_eq!(canonical, s(row, "canonical").as_bytes());
        assert_eq!(
            key.sign_hex(&canonical),
            s(row, "sig"),
            "{file}:{} sig",
            n + 1
        );
        if let Some(env_sig) = row.get("envelopeSig").and_then(|v| v.as_str()) {
            let mut obj = value.as_object().expect("object with sig").clone();
            obj.remove("sig");
            let c = Value::Object(obj).to_canonical();
            assert_eq!(key.sign_hex(&c), env_sig, "{file}:{} envelopeSig", n + 1);
        }
    }
    rows.len()
}

#[test]
fn canonical_and_sha256_vectors() {
    assert!(check_vectors("canonical.jsonl") > 100);
}

#[test]
fn sha384_and_sha512_vectors() {
    assert!(check_vectors("sigs-other-algos.jsonl") > 10);
}

#[test]
fn every_transcript_frame_verifies_and_re_signs_identically() {
    let key = Key::new("interop-secret", HashAlgo::Sha256);
    let limits = Limits::default();
    let mut scratch = Vec::new();
    let rows = lines("transcript.jsonl");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("transcript-meta.json")).expect("meta"),
    )
    .expect("meta json");
    let control = lines("transcript-control.jsonl").len();
    assert_eq!(Some((rows.len() + control) as u64), meta["frames"].as_u64());
    for row in &rows {
        let text = s(row, "text");
        let original = json::parse(text.as_bytes()).expect("frame json");
        let sig = original.get("sig").and_then(Value::as_str).expect("sig");
        let env = wire::decode(text.as_bytes(), &key, &limits, &mut scratch)
            .unwrap_or_else(|e| panic!("seq {}: {e}", row["seq"]));
        // The typed message has the type the frame names.
        assert_eq!(
            env.message.msg_type(),
            original.get("type").and_then(Value::as_str).unwrap_or("")
        );
        assert!(
            !matches!(env.message, Message::Other { .. }),
            "seq {} untyped",
            row["seq"]
        );
        // Re-serialising the typed message and re-signing gives the original bytes.
        let from = env.from.clone();
        let to = env.to.clone();
        let header = wire::Header {
            id: (&env.id).into(),
            ts: env.ts,
            from: from.as_ref().map(Into::into),
            to: to.as_ref().map(Into::into),
        };
        let mut out = Vec::new();
        wire::encode_message(&key, &header, &env.message, &mut out);
        let again = json::parse(&out).expect("re-encoded json");
        assert_eq!(
            again.get("sig").and_then(Value::as_str),
            Some(sig),
            "seq {}",
            row["seq"]
        );
        let mut a = original.as_object().expect("obj").clone();
        a.remove("sig");
        let mut b = again.as_object().expect("obj").clone();
        b.remove("sig");
        assert_eq!(
            Value::Object(a).to_canonical(),
            Value::Object(b).to_canonical()
        );
    }
}

#[test]
fn vendored_vectors_match_shared_copy() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    if !shared.is_dir() {
        return; // A clone without the shared folder relies on the vendored copy.
    }
    let mut names: Vec<_> = std::fs::read_dir(&shared)
        .expect("shared dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    let mut ours: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("vectors dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    ours.sort();
    assert_eq!(
        names, ours,
        "vendored vectors list differs from ../shared/conformance"
    );
    for name in names {
        let a = std::fs::read(shared.join(&name)).expect("shared file");
        let b = std::fs::read(vectors_dir().join(&name)).expect("vendored file");
        assert!(
            a == b,
            "{name:?} differs from ../shared/conformance: copy it verbatim"
        );
    }
}
