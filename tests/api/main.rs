//! Black-box tests: the real application on free ports with real Redis / MariaDB processes; only the Nexon
//! upstream is simulated, by the project's own simulator.

mod harness;
mod helpers;

mod cache;
mod foundation;
mod resilience;
mod services;
