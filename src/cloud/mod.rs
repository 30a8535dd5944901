//! Cloud APIs: Alibaba Cloud (ECS, E-HPC) and Kingsoft Cloud (KEC) clients.
//!
//! Owns: credentials, request signing, the RPC transport with retries, typed requests and
//! responses. Must not touch image files or object uploads.

pub mod aliyun;
pub mod ksyun;
