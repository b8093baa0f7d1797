//! The simulator's HTTP surface: routes, the per-call pipeline (count → latency → fault → key → params), and
//! serving on a listener or a spawned background task.
//!
//! Contract:
//! - Data endpoints answer 200 with pretty-printed JSON (like the upstream's samples; an item-equipment
//!   payload is 250–400 KB) or the upstream's error body `{"error":{"name":"OPENAPI000NN","message":…}}`
//!   with the code's status; a 429 carries `Retry-After: 1`. Unknown paths and methods answer 400
//!   `OPENAPI00006` like the upstream's "invalid path".
//! - `/_sim/faults` (GET / POST merge / DELETE reset) and `/_sim/stats` (GET, POST `/_sim/stats/reset`)
//!   need no key; an invalid fault body is 400 `{"error":{"name":"BAD_REQUEST","message":…}}` and changes
//!   nothing. The body is read as JSON whatever its content type.
//! - [`serve`] runs until `shutdown` resolves, then drains in-flight requests. [`spawn`] binds (port 0 is
//!   fine), serves in a task and returns a [`SimHandle`] that stops the server on
//!   [`SimHandle::shutdown`] or when dropped.
//!
//! Why: the gateway's client is tested against this exactly as against the real upstream, including
//! failure statuses and latency, so the pipeline order is fixed and documented.
//!
//! Failure modes: generation runs on the blocking pool; if that task fails (it does not panic on any
//! input) the call answers 500 `OPENAPI00001`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::faults::FaultPatch;
use super::generate::{generate_basic, generate_equipment, parse_date};
use super::identity::{name_for_ocid, ocid_for};
use super::{Endpoint, Simulator};
use crate::nexon::wire::{
    API_KEY_HEADER, ErrorBody, ErrorDetail, IdResponse, NexonErrorCode, PATH_BASIC, PATH_ID,
    PATH_ITEM_EQUIPMENT,
};

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub(super) fn router(sim: Simulator) -> Router {
    Router::new()
        .route(PATH_ID, get(id))
        .route(PATH_BASIC, get(basic))
        .route(PATH_ITEM_EQUIPMENT, get(item_equipment))
        .route(
            "/_sim/faults",
            get(get_faults).post(post_faults).delete(delete_faults),
        )
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .fallback(unknown_path)
        .method_not_allowed_fallback(unknown_path)
        .with_state(sim)
}

/// `value` as pretty-printed JSON, byte for byte what `serde_json::to_vec_pretty` writes (two-space indent),
/// in a buffer of `capacity` bytes to start with.
///
/// Written with [`PrettyWriter`]: serde_json's own pretty formatter writes a line's indentation one level at
/// a time, which was a quarter of the cost of serialising an item-equipment answer.
pub fn pretty_json<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(capacity);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PrettyWriter::default());
    value.serialize(&mut ser)?;
    Ok(buf)
}

/// `",\n"` followed by enough spaces for 32 levels of indentation.
const BREAKS: &[u8; 66] = b",\n                                                                ";

/// serde_json's `PrettyFormatter` with two-space indentation, writing each line break and its indentation
/// in one call.
#[derive(Default)]
struct PrettyWriter {
    depth: usize,
    has_value: bool,
}

impl PrettyWriter {
    /// A line break (after a comma when `comma`) and the current indentation.
    fn line<W: ?Sized + io::Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let from = if comma { 0 } else { 1 };
        let to = 2 + 2 * self.depth;
        if to <= BREAKS.len() {
            return w.write_all(&BREAKS[from..to]);
        }
        w.write_all(&BREAKS[from..2])?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Opens an array or object: one level deeper, no value written in it yet.
    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// Closes an array or object, on its own line when it holds values.
    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for PrettyWriter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.line(w, !first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.line(w, !first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T, pretty: bool) -> Response {
    let bytes = if pretty {
        pretty_json(body, 1024)
    } else {
        serde_json::to_vec(body)
    };
    match bytes {
        Ok(b) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            b,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn nexon_error(status: u16, code: NexonErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = json(status, &ErrorBody::new(code, message), false);
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn code_error(code: NexonErrorCode) -> Response {
    let message = match code {
        NexonErrorCode::InternalError => "Please try again later",
        NexonErrorCode::Forbidden => "Forbidden",
        NexonErrorCode::InvalidIdentifier => "Please input valid id",
        NexonErrorCode::InvalidParameter => "Please input valid parameter",
        NexonErrorCode::InvalidApiKey => "Please input valid key",
        NexonErrorCode::InvalidPath => "Please input valid game or path",
        NexonErrorCode::RateLimited => "Too many requests",
        NexonErrorCode::DataPreparing => "Data being prepared",
        NexonErrorCode::GameMaintenance => "Game under maintenance",
        NexonErrorCode::ApiMaintenance => "API under maintenance",
    };
    nexon_error(code.http_status(), code, message)
}

/// The per-call pipeline every data endpoint runs first: count, latency, faults, key.
async fn admit(sim: &Simulator, e: Endpoint, headers: &HeaderMap) -> Result<(), Response> {
    sim.count(e);
    let faults = sim.fault_state();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let draw = if faults.error_rate > 0.0 {
        sim.fault_draw()
    } else {
        1.0
    };
    if let Some(f) = faults.decide(draw) {
        let message = if faults.outage {
            "simulated outage"
        } else {
            "simulated error"
        };
        return Err(nexon_error(f.status, f.code, message));
    }
    let key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let ok = !key.is_empty() && sim.config().api_key.as_deref().is_none_or(|k| k == key);
    if ok {
        Ok(())
    } else {
        Err(code_error(NexonErrorCode::InvalidApiKey))
    }
}

fn param<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.as_ref()
        .ok()
        .and_then(|Query(m)| m.get(name))
        .map(String::as_str)
}

/// The parameters of the character endpoints: `(ocid, name behind it, date)`.
type CharacterParams = (String, String, Option<chrono::NaiveDate>);

/// `ocid` and optional `date` of the character endpoints, or the code to answer with.
fn character_params(sim: &Simulator, q: &Params) -> Result<CharacterParams, NexonErrorCode> {
    if q.is_err() {
        return Err(NexonErrorCode::InvalidParameter);
    }
    let ocid = param(q, "ocid").ok_or(NexonErrorCode::InvalidParameter)?;
    let name = name_for_ocid(sim.seed(), ocid).ok_or(NexonErrorCode::InvalidIdentifier)?;
    let date = match param(q, "date") {
        None => None,
        Some(d) => Some(parse_date(d).ok_or(NexonErrorCode::InvalidParameter)?),
    };
    Ok((ocid.to_string(), name, date))
}

async fn id(State(sim): State<Simulator>, headers: HeaderMap, q: Params) -> Response {
    if let Err(r) = admit(&sim, Endpoint::Id, &headers).await {
        return r;
    }
    match param(&q, "character_name").and_then(|n| ocid_for(sim.seed(), n)) {
        Some(ocid) => json(StatusCode::OK, &IdResponse { ocid }, true),
        None => code_error(NexonErrorCode::InvalidParameter),
    }
}

async fn basic(State(sim): State<Simulator>, headers: HeaderMap, q: Params) -> Response {
    if let Err(r) = admit(&sim, Endpoint::Basic, &headers).await {
        return r;
    }
    match character_params(&sim, &q) {
        Ok((ocid, name, date)) => json(
            StatusCode::OK,
            &generate_basic(sim.seed(), &ocid, &name, date),
            true,
        ),
        Err(code) => code_error(code),
    }
}

/// The initial capacity of an item-equipment answer's buffer (answers are 300–400 KB pretty-printed).
const EQUIPMENT_BODY_CAPACITY: usize = 512 * 1024;

async fn item_equipment(State(sim): State<Simulator>, headers: HeaderMap, q: Params) -> Response {
    if let Err(r) = admit(&sim, Endpoint::ItemEquipment, &headers).await {
        return r;
    }
    let (ocid, _, date) = match character_params(&sim, &q) {
        Ok(p) => p,
        Err(code) => return code_error(code),
    };
    let seed = sim.seed();
    // A few milliseconds of CPU: keep it off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        // Sized for a whole answer (~357 KB): growing the buffer by doubling would copy it several times.
        pretty_json(
            &generate_equipment(seed, &ocid, date),
            EQUIPMENT_BODY_CAPACITY,
        )
    })
    .await;
    match body {
        Ok(Ok(b)) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            b,
        )
            .into_response(),
        _ => code_error(NexonErrorCode::InternalError),
    }
}

fn bad_request(message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            name: "BAD_REQUEST".into(),
            message,
        },
    };
    json(StatusCode::BAD_REQUEST, &body, false)
}

async fn get_faults(State(sim): State<Simulator>) -> Response {
    json(StatusCode::OK, &sim.faults(), true)
}

async fn post_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let patch: FaultPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("invalid fault settings: {e}")),
    };
    match sim.set_faults(&patch) {
        Ok(f) => {
            tracing::info!(faults = ?f, "simulator faults changed");
            json(StatusCode::OK, &f, true)
        }
        Err(e) => bad_request(e.to_string()),
    }
}

async fn delete_faults(State(sim): State<Simulator>) -> Response {
    let f = sim.reset_faults();
    tracing::info!("simulator faults cleared");
    json(StatusCode::OK, &f, true)
}

async fn get_stats(State(sim): State<Simulator>) -> Response {
    json(StatusCode::OK, &sim.stats(), true)
}

async fn reset_stats(State(sim): State<Simulator>) -> Response {
    sim.reset_stats();
    json(StatusCode::OK, &sim.stats(), true)
}

async fn unknown_path() -> Response {
    code_error(NexonErrorCode::InvalidPath)
}

/// Serves the simulator on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// A simulator serving in a background task. Stops on [`SimHandle::shutdown`] or drop.
#[derive(Debug)]
pub struct SimHandle {
    pub addr: SocketAddr,
    sim: Simulator,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimHandle {
    /// `http://ADDR`, the base URL to configure as the upstream.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The served instance (for faults and counters without HTTP).
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), and returns the server's result.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(io::Error::other(e)),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `sim` in a background task.
pub async fn spawn(sim: Simulator, addr: SocketAddr) -> io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, sim.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(SimHandle {
        addr,
        sim,
        stop: Some(stop),
        task: Some(task),
    })
}
