//! Black-box tests: the real application on free ports with real Redis / MariaDB processes; only the Nexon
//! upstream is simulated, by the project's own simulator.

mod harness;
mod helpers;

mod admin;
mod backends;
mod cache;
mod durability;
mod durable;
mod engine;
mod foundation;
mod hostile;
mod http_contract;
mod likes;
mod locks;
mod operations;
mod operator;
mod resilience;
mod rules;
mod services;
mod shutdown;
