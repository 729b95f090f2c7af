//! Whatever a hub sends, the connection neither panics nor grows without bound:
//! random bytes, and correctly signed frames of every type with random payloads.

mod client_support;

use client_support::*;
use link_sansio::client::Input;
use proptest::prelude::*;

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-1e6f64..1e6).prop_map(|n| serde_json::json!(n)),
        (0i64..10).prop_map(|n| serde_json::json!(n)),
        "[a-z.\\-_ ]{0,12}".prop_map(serde_json::Value::String),
        Just(serde_json::json!("req-1")),
        Just(serde_json::json!("news")),
        Just(serde_json::json!("job.run")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("ok".to_owned()),
                    Just("id".to_owned()),
                    Just("topic".to_owned()),
                    Just("payload".to_owned()),
                    Just("rpcType".to_owned()),
                    Just("rpcData".to_owned()),
                    Just("peers".to_owned()),
                    Just("kind".to_owned()),
                    Just("from".to_owned()),
                    Just("status".to_owned()),
                    Just("features".to_owned()),
                    Just("directType".to_owned()),
                    Just("connectedAt".to_owned()),
                    Just("error".to_owned()),
                    Just("code".to_owned()),
                    "[a-z]{1,4}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn msg_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("hello.ack"),
        Just("peers.update"),
        Just("status.snapshot"),
        Just("status.update"),
        Just("rpc.request"),
        Just("rpc.response"),
        Just("rpc.cancel"),
        Just("topic.message"),
        Just("direct"),
        Just("hello"),
        Just("something.else"),
    ]
    .prop_map(str::to_owned)
}

fn sender() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("server")),
        Just(Some("caller")),
        Just(Some("me")),
        Just(Some(""))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn signed_frames_of_any_shape_are_handled(
        frames in prop::collection::vec((msg_type(), sender(), prop::option::of(json()), "[a-z0-9-]{1,8}"), 1..12)
    ) {
        let mut c = config("me");
        c.rpc_handlers.insert("job.run".into());
        c.max_concurrent_rpc = 4;
        c.max_outbox_bytes = 4_096;
        let mut h = Harness::ready(c);
        h.conn.subscribe(h.now, "news").expect("valid");
        for (t, from, data, id) in frames {
            let data = data.map(v);
            let bytes = h.frame_with(&id, h.now.ms(), &t, from, data);
            h.input(Input::Frame(&bytes));
            h.ms(10);
            let health = h.conn.health();
            prop_assert!(health.outbox_bytes <= 4_096);
            prop_assert!(health.in_flight_rpc <= 4);
        }
        h.ms(60_000);
    }

    #[test]
    fn random_bytes_are_dropped_quietly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut h = Harness::ready(config("me"));
        h.input(Input::Frame(&bytes));
        prop_assert!(h.conn.is_ready());
        prop_assert!(h.take_sent().is_empty());
    }
}
