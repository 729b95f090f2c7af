//! A hub and two clients on smol: `cargo run -p link-async-std --example smol`.

mod demo;

fn main() -> Result<(), link_async_std::Error> {
    smol::block_on(demo::hub_and_two_clients::<link_async_std::SmolRuntime>())
}
