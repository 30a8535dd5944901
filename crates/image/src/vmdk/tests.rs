//! Unit tests of the VMDK rules.
