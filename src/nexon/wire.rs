//! Wire types of the Nexon Open API, shared by the client and the simulator (one schema for both sides).
//!
//! Contract: these mirror the upstream's JSON exactly (field names, string-typed numbers where the upstream
//! sends strings). Unknown fields are ignored on read; `null` is accepted wherever the upstream has been seen
//! to send it. The item-equipment payload itself is the engine's model ([`crate::expectation::model`]).

use serde::{Deserialize, Serialize};

/// Upstream paths, relative to the base URL.
pub const PATH_ID: &str = "/maplestory/v1/id";
pub const PATH_BASIC: &str = "/maplestory/v1/character/basic";
pub const PATH_ITEM_EQUIPMENT: &str = "/maplestory/v1/character/item-equipment";
/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-nxopen-api-key";

/// `GET /maplestory/v1/id?character_name=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    pub ocid: String,
}

/// `GET /maplestory/v1/character/basic?ocid=`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CharacterBasic {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub character_name: Option<String>,
    #[serde(default)]
    pub world_name: Option<String>,
    #[serde(default)]
    pub character_gender: Option<String>,
    #[serde(default)]
    pub character_class: Option<String>,
    #[serde(default)]
    pub character_class_level: Option<String>,
    #[serde(default)]
    pub character_level: Option<i64>,
    #[serde(default)]
    pub character_exp: Option<i64>,
    #[serde(default)]
    pub character_exp_rate: Option<String>,
    #[serde(default)]
    pub character_guild_name: Option<String>,
    #[serde(default)]
    pub character_image: Option<String>,
    #[serde(default)]
    pub character_date_create: Option<String>,
    #[serde(default)]
    pub access_flag: Option<String>,
    #[serde(default)]
    pub liberation_quest_clear: Option<String>,
}

/// The upstream's error body: `{"error":{"name":"OPENAPI000NN","message":"…"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub name: String,
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: NexonErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                name: code.name().to_string(),
                message: message.into(),
            },
        }
    }
}

/// The upstream's documented error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NexonErrorCode {
    /// 00001 — internal error (500).
    InternalError,
    /// 00002 — forbidden (403).
    Forbidden,
    /// 00003 — invalid identifier (400).
    InvalidIdentifier,
    /// 00004 — bad or missing parameter (400).
    InvalidParameter,
    /// 00005 — invalid API key (400).
    InvalidApiKey,
    /// 00006 — invalid game or path (400).
    InvalidPath,
    /// 00007 — rate limit exceeded (429).
    RateLimited,
    /// 00009 — data being prepared (400).
    DataPreparing,
    /// 00010 — game under maintenance (400).
    GameMaintenance,
    /// 00011 — API under maintenance (503).
    ApiMaintenance,
}

impl NexonErrorCode {
    pub const ALL: [NexonErrorCode; 10] = [
        Self::InternalError,
        Self::Forbidden,
        Self::InvalidIdentifier,
        Self::InvalidParameter,
        Self::InvalidApiKey,
        Self::InvalidPath,
        Self::RateLimited,
        Self::DataPreparing,
        Self::GameMaintenance,
        Self::ApiMaintenance,
    ];

    /// The code as the upstream writes it, e.g. `OPENAPI00005`.
    pub fn name(self) -> &'static str {
        match self {
            Self::InternalError => "OPENAPI00001",
            Self::Forbidden => "OPENAPI00002",
            Self::InvalidIdentifier => "OPENAPI00003",
            Self::InvalidParameter => "OPENAPI00004",
            Self::InvalidApiKey => "OPENAPI00005",
            Self::InvalidPath => "OPENAPI00006",
            Self::RateLimited => "OPENAPI00007",
            Self::DataPreparing => "OPENAPI00009",
            Self::GameMaintenance => "OPENAPI00010",
            Self::ApiMaintenance => "OPENAPI00011",
        }
    }

    /// The HTTP status the upstream pairs with the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InternalError => 500,
            Self::Forbidden => 403,
            Self::RateLimited => 429,
            Self::ApiMaintenance => 503,
            _ => 400,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_carry_their_status() {
        for c in NexonErrorCode::ALL {
            assert_eq!(NexonErrorCode::parse(c.name()), Some(c));
        }
        assert_eq!(NexonErrorCode::parse("OPENAPI00008"), None);
        assert_eq!(NexonErrorCode::RateLimited.http_status(), 429);
        assert_eq!(NexonErrorCode::InvalidApiKey.http_status(), 400);
    }

    #[test]
    fn parses_the_real_basic_sample() {
        let bytes = std::fs::read("../shared/data/nexon/character-basic.json").unwrap();
        let b: CharacterBasic = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(b.world_name.as_deref(), Some("스카니아"));
        assert_eq!(b.character_level, Some(295));
    }

    #[test]
    fn error_body_has_the_upstream_shape() {
        let v =
            serde_json::to_value(ErrorBody::new(NexonErrorCode::InvalidApiKey, "bad key")).unwrap();
        assert_eq!(v["error"]["name"], "OPENAPI00005");
        assert_eq!(v["error"]["message"], "bad key");
    }
}
