//! link's integration stories (`link-stories`, shared with link-tokio) on each
//! runtime this build has: smol (default feature) and async-std (`--features
//! async-std`), over real loopback sockets.

use link_async_std::{Response, Routes};

/// The user routes the HTTP story expects.
fn story_routes() -> Routes {
    Routes::new()
        .get("/health", |_| async {
            Response::text(200, "user health wins")
        })
        .get("/hello", |_| async { Response::text(200, "hi") })
}

macro_rules! stories {
    ($runtime:ty, $block_on:path) => {
        use super::story_routes;
        use link_stories::{keys_acl, primitives, reconnect, server, tls, transport};

        #[test]
        fn rpc_both_ways_with_typed_payloads() {
            $block_on(primitives::rpc_both_ways_with_typed_payloads::<$runtime>());
        }
        #[test]
        fn rpc_to_the_hub_custom_and_built_in() {
            $block_on(primitives::rpc_to_the_hub_custom_and_built_in::<$runtime>());
        }
        #[test]
        fn rpc_errors_timeouts_and_missing_targets() {
            $block_on(primitives::rpc_errors_timeouts_and_missing_targets::<
                $runtime,
            >());
        }
        #[test]
        fn dropping_an_rpc_future_cancels_the_remote_handler() {
            $block_on(primitives::dropping_an_rpc_future_cancels_the_remote_handler::<$runtime>());
        }
        #[test]
        fn publish_subscribe_and_unsubscribe_on_drop() {
            $block_on(primitives::publish_subscribe_and_unsubscribe_on_drop::<
                $runtime,
            >());
        }
        #[test]
        fn slow_subscriber_gets_an_event_not_unbounded_memory() {
            $block_on(primitives::slow_subscriber_gets_an_event_not_unbounded_memory::<$runtime>());
        }
        #[test]
        fn direct_messages_arrive_as_events() {
            $block_on(primitives::direct_messages_arrive_as_events::<$runtime>());
        }
        #[test]
        fn status_peers_and_health() {
            $block_on(primitives::status_peers_and_health::<$runtime>());
        }
        #[test]
        fn catch_all_handler_sees_every_unhandled_type() {
            $block_on(primitives::catch_all_handler_sees_every_unhandled_type::<
                $runtime,
            >());
        }
        #[test]
        fn a_slow_event_stream_lags_instead_of_growing() {
            $block_on(primitives::a_slow_event_stream_lags_instead_of_growing::<
                $runtime,
            >());
        }
        #[test]
        fn event_streams_end_when_the_link_stops() {
            $block_on(primitives::event_streams_end_when_the_link_stops::<$runtime>());
        }
        #[test]
        fn binary_frames_are_treated_as_text_and_pings_are_answered() {
            $block_on(
                transport::binary_frames_are_treated_as_text_and_pings_are_answered::<$runtime>(),
            );
        }
        #[cfg(unix)]
        #[test]
        fn a_signal_triggers_graceful_shutdown() {
            $block_on(
                link_stories::signals::a_signal_triggers_graceful_shutdown::<$runtime>(
                    async_signal::Signal::Usr1,
                ),
            );
        }
        #[test]
        fn per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop() {
            $block_on(
                keys_acl::per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop::<
                    $runtime,
                >(),
            );
        }
        #[test]
        fn async_key_resolver_admits_known_kinds_and_survives_a_panic() {
            $block_on(
                keys_acl::async_key_resolver_admits_known_kinds_and_survives_a_panic::<$runtime>(),
            );
        }
        #[test]
        fn acl_hooks_deny_with_codes_and_fail_closed() {
            $block_on(keys_acl::acl_hooks_deny_with_codes_and_fail_closed::<
                $runtime,
            >());
        }
        #[test]
        fn http_routes_health_state_user_routes_and_404() {
            $block_on(server::http_routes_health_state_user_routes_and_404::<
                $runtime,
            >(story_routes()));
        }
        #[test]
        fn upgrades_only_at_the_configured_path_and_frames_are_capped() {
            $block_on(
                server::upgrades_only_at_the_configured_path_and_frames_are_capped::<$runtime>(),
            );
        }
        #[test]
        fn graceful_shutdown_with_clients_connected() {
            $block_on(server::graceful_shutdown_with_clients_connected::<$runtime>());
        }
        #[test]
        fn clients_survive_a_hub_restart_on_the_same_port() {
            $block_on(reconnect::clients_survive_a_hub_restart_on_the_same_port::<
                $runtime,
            >());
        }
        #[test]
        fn wss_with_a_self_signed_certificate() {
            $block_on(tls::wss_with_a_self_signed_certificate::<$runtime>());
        }
    };
}

#[cfg(feature = "smol")]
mod on_smol {
    stories!(link_async_std::SmolRuntime, smol::block_on);
}

#[cfg(feature = "async-std")]
mod on_async_std {
    stories!(link_async_std::AsyncStdRuntime, async_std::task::block_on);
}
