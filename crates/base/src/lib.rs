//! The vocabulary every layer of imgport shares: progress and findings reporting, secrets
//! that never print, destinations that name kept state, and memory hints.

pub mod destination;
pub mod mem;
pub mod report;
pub mod secret;
