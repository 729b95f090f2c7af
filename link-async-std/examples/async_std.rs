//! A hub and two clients on async-std (discontinued upstream in favour of smol):
//! `cargo run -p link-async-std --no-default-features --features async-std --example async_std`.

mod demo;

fn main() -> Result<(), link_async_std::Error> {
    async_std::task::block_on(demo::hub_and_two_clients::<link_async_std::AsyncStdRuntime>())
}
