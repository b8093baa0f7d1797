//! The upstream (Nexon Open API): wire types, identifiers, and the client.
pub mod client;
pub mod names;
pub mod wire;

pub use client::{Endpoint, NexonClient, NexonError};
pub use names::{CharacterName, NameError, Ocid};
