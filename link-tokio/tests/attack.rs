//! The adversarial suite: each test attacks a running hub over real loopback
//! WebSockets and checks that the hub stays up, alice and bob keep working, memory
//! stays bounded and the right protocol-error reason or error code is counted. The
//! attacks live in `attack_kit/attacks.rs` (shared with `examples/attack.rs`); attacks
//! run one at a time within this binary.

mod attack_kit;

async fn attack(name: &str) {
    let report = attack_kit::attacks::run(name).await;
    eprintln!("{}", attack_kit::table(std::slice::from_ref(&report)));
    report.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_flood_beyond_the_pending_cap() {
    attack("hello flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_hit_the_hello_timeout() {
    attack("silent sockets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_with_1009_or_drop_as_oversize() {
    attack("oversized frames").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_non_utf8_frames() {
    attack("garbage frames").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_websocket_frames_close_with_the_ws_codes() {
    attack("invalid websocket frames").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_nesting() {
    attack("deep nesting").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers() {
    attack("huge numbers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys() {
    attack("duplicate keys").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_captured_frames() {
    attack("replayed frames").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_from_is_restamped() {
    attack("forged from").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_per_peer_key_is_never_ready() {
    attack("wrong per-peer key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_client_is_capped() {
    attack("never-reading client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_burst_to_a_peer_that_drops() {
    attack("rpc burst, target drops").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_key_resolver_does_not_keep_parked_hellos() {
    attack("hanging key resolver").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_flood_keeps_the_replay_cache_bounded() {
    attack("id flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rpc_flood_is_refused_beyond_max_concurrent_rpc() {
    attack("server rpc flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_spam_is_conflated_for_a_stalled_peer() {
    attack("status spam to a stalled peer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_flood_is_released_on_disconnect() {
    attack("subscription flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http_requests_do_not_reach_the_hub() {
    attack("stalled http requests").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_under_attack_is_bounded() {
    attack("stop under attack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_hello_replayed_does_not_impersonate() {
    attack("captured hello replayed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_rpc_response_is_refused_by_the_caller() {
    attack("forged rpc response").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_frame_flood_is_read_at_the_hubs_pace() {
    attack("expensive frame flood").await;
}
