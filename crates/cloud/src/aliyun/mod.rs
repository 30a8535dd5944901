//! Alibaba Cloud: RPC signing (V2 HMAC-SHA1 and V3 ACS3-HMAC-SHA256), the RPC
//! client, and typed ECS / E-HPC requests.

pub mod client;
pub mod ecs;
pub mod ehpc;
pub mod poll;
pub mod ram;
pub mod rpc;
pub mod sign;
pub mod sts;
pub mod time;
pub mod transport;
pub mod types;
pub mod validate;
