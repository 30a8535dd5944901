//! Alibaba Cloud: credentials, RPC signing (V2 HMAC-SHA1 and V3 ACS3-HMAC-SHA256), the RPC
//! client, and typed ECS / E-HPC requests.

pub mod credentials;
