//! The vocabulary every layer of imgport shares: endian field reads, progress and findings
//! reporting, the "how many at once" controller, secrets
//! that never print, destinations that name kept state, memory hints and the retry policy.

pub mod bytes;
pub mod climb;
pub mod destination;
pub mod mem;
pub mod report;
pub mod retry;
pub mod secret;
