//! The upstream (Nexon Open API) client and its wire types.
pub mod wire;
