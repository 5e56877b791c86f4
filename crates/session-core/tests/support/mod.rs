//! Test support shared by the integration tests: real servers started and stopped by the test.
pub mod servers;
