//! Replays the reference transcript's client frames into a `HubState` and checks that
//! each socket receives what the reference hub sent it: same types, from/to, ids where
//! the reference reused the caller's, payloads and error codes (clock fields aside).

mod hub_harness;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::Duration;

use link_sansio::hub::{ConnId, HubConfig, HubState, Input, Keys, Output, ServerReply};
use link_sansio::time::Now;
use link_sansio::wire::{self, Key, Limits, Value};
use serde_json::{Value as Json, json};

const SECRET: &str = "interop-secret";

fn lines(name: &str) -> Vec<Json> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    std::fs::read_to_string(path)
        .expect("transcript")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Removes the hub's clock readings (`serverTime`, `connectedAt`, `at`), which differ
/// by the few milliseconds between the reference hub and the client's signing time.
fn without_clock(v: &Json) -> Json {
    match v {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(k, v)| {
                    !(matches!(k.as_str(), "serverTime" | "connectedAt" | "at") && v.is_number())
                })
                .map(|(k, v)| (k.clone(), without_clock(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(without_clock).collect()),
        other => other.clone(),
    }
}

struct Replay {
    hub: HubState,
    origin: Now,
    t0: u64,
    now: Now,
    sent: HashMap<u64, VecDeque<Json>>,
    closes: Vec<(u64, u16, String)>,
    opened: HashSet<u64>,
}

impl Replay {
    fn new(t0: u64) -> Self {
        let mut config = HubConfig::new(Keys::Shared(SECRET.into()));
        config.keepalive_interval = Duration::ZERO;
        config.hello_timeout = Duration::ZERO;
        let origin = Now::new(hub_harness::origin().instant, t0);
        let mut hub = HubState::new(config, 1, origin);
        hub.register_server_rpc("ping");
        Replay {
            hub,
            origin,
            t0,
            now: origin,
            sent: HashMap::new(),
            closes: Vec::new(),
            opened: HashSet::new(),
        }
    }

    fn input(&mut self, input: Input<'_>) {
        self.hub.handle_input(self.now, input);
        let key = Key::new(SECRET, Default::default());
        let mut answers = Vec::new();
        loop {
            match self.hub.poll_output() {
                Output::Timeout(_) => break,
                Output::Transmit { conn, text } => {
                    let mut scratch = Vec::new();
                    wire::decode(text.as_bytes(), &key, &Limits::default(), &mut scratch)
                        .unwrap_or_else(|e| panic!("our frame does not verify: {e}: {text}"));
                    let frame: Json = serde_json::from_str(&text).expect("json");
                    self.sent.entry(conn.0).or_default().push_back(frame);
                }
                Output::Close { conn, code, reason } => self.closes.push((conn.0, code, reason)),
                Output::ServerRpc(call) => {
                    // The transcript hub's application handler: `ping` echoes.
                    assert_eq!(call.rpc_type, "ping");
                    let mut result = link_sansio::wire::Object::new();
                    result.insert("pong", Value::Bool(true));
                    result.insert("echo", call.data.clone().unwrap_or(Value::Null));
                    answers.push((call.call, Value::Object(result)));
                }
                _ => {}
            }
        }
        for (call, result) in answers {
            self.input(Input::ServerRpcDone {
                call,
                reply: ServerReply::Ok(Some(result)),
            });
        }
    }

    fn at(&mut self, ts: u64) {
        let ts = ts.max(self.now.wall_ms);
        self.now = Now::new(
            self.origin.instant + Duration::from_millis(ts - self.t0),
            ts,
        );
    }
}

#[test]
fn the_hub_answers_the_reference_transcript_like_the_reference_hub() {
    let frames = lines("transcript.jsonl");
    let t0 = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Json>(f["text"].as_str()?).ok()?["ts"].as_u64())
        .min()
        .expect("timestamps");
    let mut replay = Replay::new(t0);
    let mut client_ids = HashSet::new();
    let mut compared = 0;
    for row in &frames {
        let conn = row["conn"].as_u64().expect("conn");
        let text = row["text"].as_str().expect("text");
        let msg: Json = serde_json::from_str(text).expect("frame json");
        let step = row["step"].as_str().unwrap_or("");
        if row["dir"] == "c->h" {
            client_ids.insert(msg["id"].as_str().unwrap_or("").to_owned());
            replay.at(msg["ts"].as_u64().expect("ts"));
            if replay.opened.insert(conn) {
                replay.input(Input::Opened {
                    conn: ConnId(conn),
                    remote: None,
                });
            }
            replay.input(Input::Frame {
                conn: ConnId(conn),
                bytes: text.as_bytes(),
            });
            continue;
        }
        let ours = replay
            .sent
            .get_mut(&conn)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| {
                panic!("step {step}: the hub sent nothing where the reference sent {msg}")
            });
        for field in ["type", "from", "to"] {
            assert_eq!(
                ours[field], msg[field],
                "step {step}: {field} of {msg} vs ours {ours}"
            );
        }
        let reference_id = msg["id"].as_str().unwrap_or("");
        if client_ids.contains(reference_id) {
            assert_eq!(
                ours["id"], msg["id"],
                "step {step}: the caller's id is reused"
            );
        } else {
            assert_eq!(
                ours["id"].as_str().map(str::len),
                Some(36),
                "step {step}: fresh uuid"
            );
            assert!(!client_ids.contains(ours["id"].as_str().unwrap_or("")));
        }
        assert_eq!(
            without_clock(&ours["data"]),
            without_clock(&msg["data"]),
            "step {step}: data of {} ",
            msg["type"]
        );
        compared += 1;
    }
    let expected = frames.iter().filter(|f| f["dir"] == "h->c").count();
    assert_eq!(
        compared, expected,
        "every hub→client frame of the transcript was matched"
    );
    assert_eq!(expected, 33);
    for (conn, rest) in &replay.sent {
        assert!(
            rest.is_empty(),
            "conn {conn}: frames the reference did not send: {rest:?}"
        );
    }
    // The displaced first alpha socket got the reference's close.
    let control = lines("transcript-control.jsonl");
    let displaced = control
        .iter()
        .find(|c| c["dir"] == "h->c" && c["code"] == 4000)
        .expect("4000 in control");
    assert_eq!(
        replay.closes,
        [(
            displaced["conn"].as_u64().expect("conn"),
            4000,
            displaced["reason"].as_str().unwrap_or("").to_owned()
        )]
    );
}

#[test]
fn the_health_rpc_of_the_transcript_matches_to_the_counter() {
    // The reference's `link.health` answer, including its replay-cache size, is what
    // this hub computes after the same frames.
    let meta: Json = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/transcript-meta.json"),
        )
        .expect("meta"),
    )
    .expect("json");
    let frames = lines("transcript.jsonl");
    let t0 = 0;
    let mut replay = Replay::new(t0);
    let mut health = None;
    for row in &frames {
        if row["dir"] != "c->h" {
            continue;
        }
        let conn = row["conn"].as_u64().expect("conn");
        let text = row["text"].as_str().expect("text");
        let msg: Json = serde_json::from_str(text).expect("json");
        replay.at(msg["ts"].as_u64().expect("ts"));
        if replay.opened.insert(conn) {
            replay.input(Input::Opened {
                conn: ConnId(conn),
                remote: None,
            });
        }
        replay.input(Input::Frame {
            conn: ConnId(conn),
            bytes: text.as_bytes(),
        });
        if msg["data"]["rpcType"] == "link.health" {
            let reply = replay
                .sent
                .get_mut(&conn)
                .and_then(|q| q.pop_back())
                .expect("reply");
            health = Some(reply["data"]["result"].clone());
        }
    }
    assert_eq!(health, Some(meta["results"]["health"].clone()));
    assert_eq!(meta["results"]["health"]["recentIdsSize"], json!(23));
}
