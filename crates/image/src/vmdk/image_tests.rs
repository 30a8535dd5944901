//! Tests against cached images.
