//! Local emulator of the cloud APIs imgport calls (`imgport sim`), so every cloud path can be
//! tested over real sockets on 127.0.0.1 without an account.
//!
//! Owns: the HTTP server (`server.rs`), request authentication exactly as the services do
//! it (`auth.rs`), the ECS image API state machine (`ecs.rs`; ImportImage in `import.rs`),
//! and the check of imported objects (`disk.rs`). Must not touch the client side (`cloud`) beyond sharing its pure
//! signing and validation functions, so the emulator judges requests by the documented rules
//! and not by what our client happens to send.

pub mod auth;
pub mod disk;
pub mod ecs;
pub mod import;
pub mod s3;
pub mod server;
