//! The game rules through the HTTP API, over the real Evan sample and the reference cube table. A fake upstream
//! answers like the Nexon Open API: `/id` gives one ocid, `/character/item-equipment` the sample, dated with the
//! requested date (the latest snapshot's date is null, as in the sample).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use maple_gateway::config::Secret;
use maple_gateway::expectation::starforce::PARAMS;
use maple_gateway::expectation::table::GroupSum;
use maple_gateway::expectation::{CubeTables, CubeType, Grade, ItemEquipment, PartName};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const SAMPLE: &str = "../shared/data/nexon/item-equipment-evan.json";
const TABLE: &str = "../shared/data/cube_probability.csv";

/// A fake Nexon Open API serving the Evan sample; counts its calls.
struct FakeNexon {
    url: String,
    calls: Arc<AtomicUsize>,
}

async fn fake_nexon() -> FakeNexon {
    let sample: Value = serde_json::from_slice(&std::fs::read(SAMPLE).unwrap()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (id_calls, eq_calls) = (calls.clone(), calls.clone());
    let router = Router::new()
        .route(
            "/maplestory/v1/id",
            get(move || {
                id_calls.fetch_add(1, Ordering::SeqCst);
                async { Json(json!({"ocid": "e0a4f439e53c369866b55297d2f5f4eb"})) }
            }),
        )
        .route(
            "/maplestory/v1/character/item-equipment",
            get(move |Query(q): Query<HashMap<String, String>>| {
                eq_calls.fetch_add(1, Ordering::SeqCst);
                let mut body = sample.clone();
                if let Some(d) = q.get("date") {
                    body["date"] = json!(format!("{d}T00:00+09:00"));
                }
                async move { Json(body) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    FakeNexon { url, calls }
}

/// The gateway in front of the fake upstream, pricing with the reference cube table.
async fn spawn(upstream: &FakeNexon) -> TestApp {
    let url = upstream.url.clone();
    spawn_app_with(move |s| {
        s.upstream.url = url;
        s.upstream.api_key = Some(Secret::new("fake-service-key"));
        s.instance.cube_table = Some(PathBuf::from(TABLE));
    })
    .await
}

fn items(body: &Value) -> impl Iterator<Item = &Value> {
    body["presets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap())
}

fn warnings_of<'a>(item: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> {
    item["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("item without warnings: {item}"))
        .iter()
        .filter(move |w| w["warning"] == kind)
}

#[tokio::test]
async fn the_real_sample_carries_its_rules_and_warnings() {
    let upstream = fake_nexon().await;
    let app = spawn(&upstream).await;
    let (s, body) = app.get_json("/api/v4/characters/Evan/expectation").await;
    assert_eq!(s, 200, "{body}");
    let (tables, _) = CubeTables::load(std::path::Path::new(TABLE)).unwrap();

    let rules = &body["rules"];
    assert_eq!(rules["rule_set"], "kms_30_stars");
    assert_eq!(rules["table_version"], tables.version());
    assert_eq!(body["table_version"], tables.version());
    assert!(rules["starforce"].is_object() && rules["assumptions"].is_array());
    assert_eq!(body["starforce_options"]["mvp"], "none");
    assert_eq!(body["starforce_options"]["replacement_cost"], Value::Null);

    // Every item has its warnings; the Genesis weapon says its stars are fixed; a starforced item reports its
    // destroyed items on a line of their own, "not priced" without a replacement cost.
    assert!(items(&body).all(|i| i["warnings"].is_array()));
    let genesis = items(&body)
        .find(|i| i["name"].as_str().unwrap_or("").starts_with("제네시스"))
        .unwrap();
    assert_eq!(warnings_of(genesis, "fixed_stars").count(), 1, "{genesis}");
    let replacements: Vec<&Value> = items(&body)
        .filter(|i| i["starforce"]["kind"] == "meso")
        .map(|i| &i["starforce"]["replacement"])
        .collect();
    assert!(!replacements.is_empty());
    for r in &replacements {
        assert_eq!(r["meso_text"], "not priced", "{r}");
        assert!(r["expected_items"].as_f64().unwrap() >= 0.0, "{r}");
    }
    assert_eq!(body["headline"]["replacement_meso_text"], "not priced");

    // The reference table's groups this sample looks up sum to 1 (the check below is exercised by
    // `every_item_on_an_incomplete_table_group_says_so`, on a table the sample finds incomplete).
    incomplete_groups_are_warned(&body, &tables);
}

/// Lines the Evan sample's potentials aim for (INT, all stats, magic attack).
const AIMED_AT: [&str; 3] = ["INT", "올스탯", "마력"];

/// A table the sample's items find incomplete: the reference without the first row of every BLACK slot-1 group
/// (groups still priced, with missing mass) and without the BLACK lines in [`AIMED_AT`] (targets made unreachable
/// by the missing lines).
fn table_with_incomplete_groups(dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(TABLE).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_string()];
    let mut dropped = std::collections::HashSet::new();
    for line in lines {
        // option,rate,slot,potential_option_grade,base_equipment_level,item_equipment_slot,cube_type
        let f: Vec<&str> = line.trim_end().split(',').collect();
        let n = f.len();
        let group = f[n - 5..].join(",");
        let black = f[n - 1] == "BLACK";
        if black && AIMED_AT.iter().any(|a| f[0].contains(a)) {
            continue;
        }
        if black && f[n - 5] == "1" && dropped.insert(group) {
            continue;
        }
        out.push(line.to_string());
    }
    let path = dir.join("incomplete.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

#[tokio::test]
async fn every_item_on_an_incomplete_table_group_says_so() {
    let upstream = fake_nexon().await;
    let dir = tempfile::tempdir().unwrap();
    let table = table_with_incomplete_groups(dir.path());
    let (tables, _) = CubeTables::load(&table).unwrap();
    let url = upstream.url.clone();
    let app = spawn_app_with(move |s| {
        s.upstream.url = url;
        s.upstream.api_key = Some(Secret::new("fake-service-key"));
        s.instance.cube_table = Some(table);
    })
    .await;
    let (s, body) = app.get_json("/api/v4/characters/Evan/expectation").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["rules"]["table_version"], tables.version());
    assert!(
        incomplete_groups_are_warned(&body, &tables) > 0,
        "the sample's items use incomplete groups of this table"
    );
    // Both kinds of block rest on incomplete groups here: priced ones and unreachable ones, each warned.
    let warned = |priced: bool| {
        items(&body).any(|i| {
            warnings_of(i, "incomplete_table_group").any(|w| {
                let b = &i[w["block"].as_str().unwrap()];
                if priced {
                    b["expected_cubes"].is_number()
                } else {
                    b["unavailable"] == "unreachable"
                }
            })
        })
    };
    assert!(warned(true), "a priced block on an incomplete group");
    assert!(warned(false), "an unreachable block on an incomplete group");
}

/// No item uses an incomplete table group silently: the groups each item's cube blocks look up, found
/// independently in `tables`, are on the item's warnings slot by slot with their missing mass, and no warning
/// names any other group. Returns how many (item, block, slot) use an incomplete group.
fn incomplete_groups_are_warned(body: &Value, tables: &CubeTables) -> usize {
    let eq = ItemEquipment::from_json(&std::fs::read(SAMPLE).unwrap()).unwrap();
    let mut incomplete = 0;
    for n in 1..=3u8 {
        let raw = eq.preset(n).unwrap_or_default();
        let served = body["presets"][n as usize - 1]["items"].as_array().unwrap();
        assert_eq!(raw.len(), served.len());
        for (item, out) in raw.iter().zip(served) {
            assert_eq!(item.item_name.as_deref(), out["name"].as_str());
            for (cube, block, grade) in [
                (CubeType::Black, "potential", &item.potential_option_grade),
                (
                    CubeType::Additional,
                    "additional",
                    &item.additional_potential_option_grade,
                ),
            ] {
                let reason = out[block]["unavailable"].as_str();
                if matches!(reason, Some("no_target" | "no_potential")) {
                    continue; // the table is not consulted
                }
                let (Some(grade), Some(part)) = (
                    grade.as_deref().and_then(Grade::parse),
                    item.item_equipment_slot
                        .as_deref()
                        .and_then(PartName::parse),
                ) else {
                    continue;
                };
                let Ok(selected) = tables.select(cube, grade, &part, item.base_level()) else {
                    continue;
                };
                for (i, g) in selected.slots.iter().enumerate() {
                    if g.state != GroupSum::Incomplete {
                        continue;
                    }
                    incomplete += 1;
                    let slot = i as u64 + 1;
                    let w = warnings_of(out, "incomplete_table_group")
                        .find(|w| w["block"] == block && w["slot"] == slot)
                        .unwrap_or_else(|| {
                            panic!(
                                "{:?} uses the incomplete {block} group of slot {slot} silently: {}",
                                item.item_name, out
                            )
                        });
                    let missing = w["missing_mass"].as_f64().unwrap();
                    assert!((missing - (1.0 - g.sum)).abs() < 1e-12, "{w} vs {}", g.sum);
                }
            }
        }
    }
    let warned: usize = items(body)
        .map(|i| warnings_of(i, "incomplete_table_group").count())
        .sum();
    assert_eq!(
        warned, incomplete,
        "a warning names a group that is not incomplete"
    );
    incomplete
}

#[tokio::test]
async fn a_past_date_before_the_rule_change_is_priced_under_the_older_rules() {
    let upstream = fake_nexon().await;
    let app = spawn(&upstream).await;
    let (s, old) = app
        .get_json("/api/v4/characters/Evan/expectation?date=2025-01-15")
        .await;
    assert_eq!(s, 200, "{old}");
    assert!(old["date"].as_str().unwrap().starts_with("2025-01-15"));
    let rules = &old["rules"];
    assert_eq!(rules["rule_set"], "kms_25_stars");
    // The 25-star system's constants are the ones echoed: 25 stars at most, prevention at 15-16 for +100 %,
    // star drops with chance time, no Sunday destruction relief.
    let sf = &rules["starforce"];
    assert_eq!(sf["max_stars"], 25, "{sf}");
    assert_eq!(sf["prevention_stars"], json!([15, 16]), "{sf}");
    assert_eq!(sf["prevention_surcharge_of_base"], 1.0, "{sf}");
    assert_eq!(sf["chance_time_after_drops"], 2, "{sf}");
    assert_eq!(sf["sunday_destroy_factor"], Value::Null, "{sf}");
    // Every starforce block of the sample is a result: nothing is left unpriced for its rule set.
    let text = old.to_string();
    assert!(!text.contains("rule_set_not_modelled"), "{text}");
    for item in items(&old) {
        let b = &item["starforce"];
        assert!(b["unavailable"].is_null(), "{item}");
    }
    // Meso-starforced items are priced, with the older maximum (25) on items of level 138 and above.
    let priced: Vec<&Value> = items(&old)
        .filter(|i| i["starforce"]["kind"] == "meso" && i["starforce"]["stars"].as_u64() > Some(0))
        .collect();
    assert!(!priced.is_empty());
    for i in &priced {
        let b = &i["starforce"];
        assert!(b["expected_meso"].as_u64().unwrap() > 0, "{i}");
        assert!(b["expected_attempts"].as_f64().unwrap() > 0.0, "{i}");
        if b["level"].as_i64().unwrap() >= 138 {
            assert_eq!(b["max_stars"], 25, "{i}");
        }
    }
    assert!(old["headline"]["starforce_meso"].as_u64().unwrap() > 0);

    // The same character on a date after the change, and its latest snapshot, are priced under the current
    // rules, with other figures: the older rule set's body is never served for them.
    for path in [
        "/api/v4/characters/Evan/expectation?date=2025-06-01",
        "/api/v4/characters/Evan/expectation",
    ] {
        let (s, new) = app.get_json(path).await;
        assert_eq!(s, 200, "{path}: {new}");
        assert_eq!(new["rules"]["rule_set"], "kms_30_stars", "{path}");
        assert_eq!(new["rules"]["starforce"]["max_stars"], 30, "{path}");
        assert!(
            items(&new).any(|i| i["starforce"]["kind"] == "meso"),
            "{path}"
        );
        assert_ne!(
            new["headline"]["starforce_meso"], old["headline"]["starforce_meso"],
            "{path}"
        );
    }
    // The preset route carries the same rules.
    let (s, preset) = app
        .get_json("/api/v4/characters/Evan/expectation/preset/2?date=2025-01-15")
        .await;
    assert_eq!(s, 200, "{preset}");
    assert_eq!(preset["rules"]["rule_set"], "kms_25_stars");
    assert!(preset["preset"]["items"][0]["warnings"].is_array());

    // An option the older rules did not have (Sunday destruction relief) is named on every item it could not
    // price, instead of being dropped silently; under the current rules it is priced.
    let (s, sunday_old) = app
        .get_json("/api/v4/characters/Evan/expectation?date=2025-01-15&sunday=true")
        .await;
    assert_eq!(s, 200, "{sunday_old}");
    for i in items(&sunday_old).filter(|i| i["starforce"]["kind"] == "meso") {
        assert_eq!(
            warnings_of(i, "option_not_in_force")
                .filter(|w| w["option"] == "sunday" && w["rule_set"] == "kms_25_stars")
                .count(),
            1,
            "{i}"
        );
    }
    assert_eq!(
        sunday_old["headline"]["starforce_meso"],
        old["headline"]["starforce_meso"]
    );
    let (_, sunday_new) = app
        .get_json("/api/v4/characters/Evan/expectation?date=2025-06-01&sunday=true")
        .await;
    assert_eq!(
        items(&sunday_new)
            .flat_map(|i| warnings_of(i, "option_not_in_force"))
            .count(),
        0
    );
}

#[tokio::test]
async fn bad_option_values_are_400_naming_the_parameter() {
    let upstream = fake_nexon().await;
    let app = spawn(&upstream).await;
    for (query, name, range) in [
        ("mvp=platinum", "mvp", "diamond"),
        ("event_sale=1.5", "event_sale", "[0, 1)"),
        ("discount=-0.1", "discount", "[0, 1)"),
        ("event_sale=0.99996", "event_sale", "[0, 1)"),
        ("pc_room=perhaps", "pc_room", "true or false"),
        ("event_5_10_15=2", "event_5_10_15", "true or false"),
        ("event_1plus1=yes", "event_1plus1", "true or false"),
        (
            "replacement_cost=-1",
            "replacement_cost",
            "non-negative integer",
        ),
        ("event_sale=0.3&discount=x", "discount", "[0, 1)"),
    ] {
        let path = format!("/api/v4/characters/Evan/expectation?{query}");
        let (s, body) = app.get_json(&path).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(name) && message.contains(range),
            "{path}: {message}"
        );
    }
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        0,
        "a bad request never reaches the upstream"
    );
}

#[tokio::test]
async fn options_are_echoed_keyed_and_read_once() {
    let upstream = fake_nexon().await;
    let app = spawn(&upstream).await;
    let all = "starcatch=true&sunday=1&prevention=true&mvp=Gold&pc_room=true&event_sale=0.3&event_5_10_15=true\
               &event_1plus1=true&replacement_cost=2000000000";
    let (s, body) = app
        .get_json(&format!("/api/v4/characters/Evan/expectation?{all}"))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["starforce_options"],
        json!({"starcatch": true, "sunday": true, "prevention": true, "mvp": "gold", "pc_room": true,
               "event_sale": 0.3, "event_5_10_15": true, "event_1plus1": true, "replacement_cost": 2_000_000_000u64})
    );
    assert!(body["headline"]["replacement_meso"].is_u64(), "priced");
    let (_, plain) = app.get_json("/api/v4/characters/Evan/expectation").await;
    assert_ne!(
        plain["headline"]["starforce_meso"],
        body["headline"]["starforce_meso"]
    );

    // A sale the key cannot tell from 0.3 is 0.3: the second request is a hit on the first one's body, and
    // that body is the one 0.3 computes.
    let get = |q: &'static str| {
        let app = &app;
        async move {
            let r = app
                .get(&format!("/api/v4/characters/Evan/expectation?{q}"))
                .await;
            let cache = r.headers()["x-cache"].to_str().unwrap().to_string();
            (cache, r.json::<Value>().await.unwrap())
        }
    };
    let (first, fine) = get("discount=0.30004").await;
    assert_eq!(first, "MISS");
    assert_eq!(fine["starforce_options"]["event_sale"], 0.3);
    let (second, plain_sale) = get("event_sale=0.3").await;
    assert_eq!(second, "HIT");
    assert_eq!(fine, plain_sale);
    // The one upstream load of the equipment served every option set.
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2, "id + equipment");
}

#[tokio::test]
async fn openapi_lists_every_starforce_option_and_the_rules() {
    let upstream = fake_nexon().await;
    let app = spawn(&upstream).await;
    let (s, doc) = app.get_json("/openapi.json").await;
    assert_eq!(s, 200);
    for route in [
        "/api/v4/characters/{name}/expectation",
        "/api/v4/characters/{name}/expectation/preset/{n}",
    ] {
        let params = doc["paths"][route]["get"]["parameters"].as_array().unwrap();
        for name in PARAMS {
            let p = params
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{route}: {name} undocumented"));
            assert!(p["schema"]["type"].is_string(), "{name}: {p}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    for field in ["starforce_options", "rules", "presets"] {
        assert!(
            schemas["Expectation"]["properties"][field].is_object(),
            "{field}"
        );
    }
    // The schemas are derived from the engine's types: their names are the types' names.
    assert!(schemas["ItemExpectation"]["properties"]["warnings"].is_object());
    assert!(
        schemas["Block_StarforceResult"]["oneOf"][0]["properties"]["replacement"].is_object(),
        "{}",
        schemas["Block_StarforceResult"]
    );
    assert_eq!(
        schemas["Rules"]["properties"]["rule_set"]["$ref"],
        "#/components/schemas/RuleSet"
    );
    assert_eq!(
        schemas["RuleSet"]["enum"],
        serde_json::json!(["kms_25_stars", "kms_30_stars"])
    );
}
