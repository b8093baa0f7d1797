"""Locust scenarios for maple-gateway.

User classes (select one by class name, or by tag with ``--tags``):

=========== ========== ===================================================================================
class       tag        what a user does
=========== ========== ===================================================================================
ReaderUser  reader     GET /api/v4/characters/{name}/expectation with gzip over a Zipf-distributed
                       population of LOCUST_CHARACTERS names; checks gzip, JSON and the body's shape
HotkeyUser  hotkey     the same GET for one celebrity name, cold at the start of the run (a fresh name per
                       run): the stampede case, one upstream call expected in total
LikerUser   liker      POST /api/v2/characters/{name}/like with a random liker id (x-liker-id), sometimes
                       GET ...?liker=ID; checks that the like_count a user sees never goes down
MixedUser   mixed      3:1 reads (as ReaderUser) and likes (as LikerUser): the classic scenario
OutageUser  outage     reads while the simulator is in an outage (injected at start, removed at exit):
                       previously warmed names must be 200 from the last good copy (STALE with
                       "stale": true; HIT only where a cache tier still holds a fresh copy, see below),
                       forced refreshes must be STALE; a never-seen name must be 503 with Retry-After
=========== ========== ===================================================================================

Every user waits LOCUST_WAIT_MIN..LOCUST_WAIT_MAX seconds (default 0.1..0.5) between requests.

Environment (all optional except LOCUST_SIM_URL for OutageUser):

- LOCUST_CHARACTERS   population size (default 10000); names are ``{prefix}{rank}``
- LOCUST_NAME_PREFIX  name prefix (default ``u``); rank 0 is the most popular name
- LOCUST_ZIPF_S       Zipf exponent (default 1.0)
- LOCUST_RUN_ID       short id of the run (default: base-36 seconds since the epoch); names the hot key
                      ``hot{run id}`` and the outage's never-seen names
- LOCUST_FULL_CHECK   fraction of read responses whose JSON is parsed and checked in full (default 0.1);
                      every response gets the cheap checks (status, gzip, content type, x-cache, leading
                      bytes); parsing every ~60 KB body would make locust, not the gateway, the bottleneck
- LOCUST_HOSTS        comma-separated gateway base URLs; each user sticks to one, round robin (cluster
                      runs); default: --host
- LOCUST_SIM_URL      the standalone simulator's base URL (OutageUser: fault injection)
- LOCUST_OUTAGE_WARM  names warmed before the outage (default 200, the most popular ranks)
- LOCUST_OUTAGE_WARM_XCACHE  STALE (default): plain reads of warmed names must be STALE; ANY: HIT is
                      accepted too (with Redis the L2 copy stays fresh, see _setup_outage)
- LOCUST_EXTRA_OUT    path of a JSON file written at exit with what the CSVs do not hold (run id, outage
                      set-up), and prefix of the per-process files listing the names read; read by run.sh
- LOCUST_LEDGER       prefix of the like ledger: each process appends one line per like it sent to
                      ``{prefix}.{pid}`` (line-buffered, so a line is in the file as soon as the answer is
                      in): ``status<TAB>character<TAB>liker<TAB>start_ms<TAB>gateway``, status being the HTTP
                      status, 0 when no answer came (connection refused or reset, timeout), start_ms the
                      request's start in Unix milliseconds, gateway the base URL the like went to; 2xx
                      lines are the acknowledged likes.
                      Read by chaos.sh
- LOCUST_EVENTS       prefix of the request timeline: each process appends one line per request to
                      ``{prefix}.{pid}``: ``start_ms<TAB>kind<TAB>status<TAB>latency_ms<TAB>character``,
                      start_ms in Unix milliseconds, kind ``read`` / ``like`` / ``like-read``, status 0 when
                      no answer came. Read by chaos.sh

Request names in the stats carry the gateway's cache outcome, e.g. ``GET expectation [HIT]``, so the CSVs
split latency by HIT / MISS / STALE; the Aggregated row is the whole run.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import random
import time
import uuid

import gevent
import gevent.pool
import requests
from locust import FastHttpUser, between, events, tag, task
from locust.runners import MasterRunner, WorkerRunner

log = logging.getLogger("maple-locust")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


N_CHARACTERS = _env_int("LOCUST_CHARACTERS", 10_000)
PREFIX = os.environ.get("LOCUST_NAME_PREFIX", "u")
ZIPF_S = _env_float("LOCUST_ZIPF_S", 1.0)
# Computed at import, before `--processes` forks the workers, so master and workers agree.
RUN_ID = os.environ.get("LOCUST_RUN_ID") or _base36(int(time.time()))
HOT_NAME = f"hot{RUN_ID}"
FULL_CHECK = _env_float("LOCUST_FULL_CHECK", 0.1)
WAIT_MIN = _env_float("LOCUST_WAIT_MIN", 0.1)
WAIT_MAX = _env_float("LOCUST_WAIT_MAX", 0.5)
HOSTS = [h.strip().rstrip("/") for h in os.environ.get("LOCUST_HOSTS", "").split(",") if h.strip()]
SIM_URL = os.environ.get("LOCUST_SIM_URL", "").rstrip("/")
OUTAGE_WARM = _env_int("LOCUST_OUTAGE_WARM", 200)
EXTRA_OUT = os.environ.get("LOCUST_EXTRA_OUT", "")
_warm_xcache = os.environ.get("LOCUST_OUTAGE_WARM_XCACHE", "STALE").upper()
if _warm_xcache not in ("STALE", "ANY"):
    raise SystemExit(f"LOCUST_OUTAGE_WARM_XCACHE must be STALE or ANY, got {_warm_xcache!r}")
OUTAGE_STRICT = _warm_xcache == "STALE"

for _name in (f"{PREFIX}{N_CHARACTERS - 1}", HOT_NAME, f"x{RUN_ID}99999"):
    if not (1 <= len(_name) <= 12 and _name.isalnum()):
        raise SystemExit(
            f"character name {_name!r} is not 1-12 letters/digits: shorten LOCUST_NAME_PREFIX / LOCUST_RUN_ID "
            "or lower LOCUST_CHARACTERS"
        )
if N_CHARACTERS < 1 or OUTAGE_WARM < 1:
    raise SystemExit("LOCUST_CHARACTERS and LOCUST_OUTAGE_WARM must be at least 1")

NAMES = [f"{PREFIX}{i}" for i in range(N_CHARACTERS)]
_cum = list(itertools.accumulate(1.0 / (i + 1) ** ZIPF_S for i in range(N_CHARACTERS)))
_total = _cum[-1]


def zipf_name() -> str:
    """A name of the population, rank k drawn with probability proportional to 1 / (k+1)^s."""
    return NAMES[min(bisect.bisect_left(_cum, random.random() * _total), N_CHARACTERS - 1)]


def outage_name() -> str:
    """A Zipf draw restricted to the names warmed before the outage."""
    k = min(OUTAGE_WARM, N_CHARACTERS)
    return NAMES[min(bisect.bisect_left(_cum, random.random() * _cum[k - 1]), k - 1)]


# --- what the CSVs do not hold ------------------------------------------------------------------------------
# Names requested: each process appends every name it requests for the first time to its own file
# (LOCUST_EXTRA_OUT.names.<pid>, line-buffered), and run.sh takes the union. Files, not worker reports: a
# worker's last report can miss the master's short wait at exit on a loaded machine.

_seen_local: set[str] = set()
_names_file = None
_outage_setup: dict = {}
LEDGER = os.environ.get("LOCUST_LEDGER", "")
EVENTS = os.environ.get("LOCUST_EVENTS", "")
_ledger_file = None
_events_file = None


def _note_like(host: str, name: str, liker: str, resp) -> None:
    """Appends a like that was sent, with the status it got, to this process's ledger file."""
    global _ledger_file
    if LEDGER:
        if _ledger_file is None:
            _ledger_file = open(f"{LEDGER}.{os.getpid()}", "a", buffering=1)
        start = (getattr(resp, "request_meta", None) or {}).get("start_time") or time.time()
        _ledger_file.write(f"{resp.status_code or 0}\t{name}\t{liker}\t{int(start * 1000)}\t{host}\n")


def _note_event(kind: str, name: str, resp) -> None:
    """Appends one request (start, kind, status, latency) to this process's timeline file."""
    global _events_file
    if not EVENTS:
        return
    if _events_file is None:
        _events_file = open(f"{EVENTS}.{os.getpid()}", "a", buffering=1)
    meta = getattr(resp, "request_meta", None) or {}
    latency = meta.get("response_time") or 0.0
    start = meta.get("start_time") or (time.time() - latency / 1000.0)
    _events_file.write(f"{int(start * 1000)}\t{kind}\t{resp.status_code or 0}\t{latency:.1f}\t{name}\n")


def _note_name(name: str) -> None:
    global _names_file
    if name in _seen_local:
        return
    _seen_local.add(name)
    if EXTRA_OUT:
        if _names_file is None:
            _names_file = open(f"{EXTRA_OUT}.names.{os.getpid()}", "a", buffering=1)
        _names_file.write(name + "\n")


def _write_extra(environment) -> None:
    for f in (_names_file, _ledger_file, _events_file):
        if f is not None:
            f.flush()
    if not EXTRA_OUT or isinstance(environment.runner, WorkerRunner):
        return
    with open(EXTRA_OUT, "w") as f:
        json.dump(
            {
                "run_id": RUN_ID,
                "hot_name": HOT_NAME,
                "characters": N_CHARACTERS,
                "outage_setup": _outage_setup or None,
            },
            f,
        )


# --- checks ------------------------------------------------------------------------------------------------


def check_expectation(resp, name: str, expect_stale: bool | None, label: str, full: bool) -> None:
    """Checks a gzip expectation answer inside a catch_response block; renames the request by x-cache."""
    xcache = resp.headers.get("x-cache", "-") if resp.headers else "-"
    resp.request_meta["name"] = f"{label} [{xcache if resp.status_code == 200 else resp.status_code}]"
    if resp.status_code != 200:
        body = (resp.text or "")[:160].replace("\n", " ")
        return resp.failure(f"status {resp.status_code}: {body}")
    if resp.headers.get("content-encoding") != "gzip":
        return resp.failure("asked for gzip, got content-encoding " + repr(resp.headers.get("content-encoding")))
    if not (resp.headers.get("content-type") or "").startswith("application/json"):
        return resp.failure("content-type " + repr(resp.headers.get("content-type")))
    if xcache not in ("HIT", "MISS", "STALE"):
        return resp.failure(f"x-cache {xcache!r}")
    if expect_stale is True and xcache != "STALE":
        return resp.failure(f"expected x-cache STALE during the outage, got {xcache}")
    if expect_stale is False and xcache == "STALE":
        return resp.failure("x-cache STALE while the upstream is healthy")
    content = resp.content or b""
    # The envelope serialises `character` first: a cheap check on every response.
    if not content.startswith(b'{"character":' + json.dumps(name).encode()):
        return resp.failure("body does not start with this character's envelope")
    if not full:
        return resp.success()
    try:
        body = json.loads(content)
    except ValueError as e:
        return resp.failure(f"body is not JSON: {e}")
    problems = []
    if body.get("character") != name:
        problems.append(f"character {body.get('character')!r}")
    if not isinstance(body.get("stale"), bool):
        problems.append("stale not a bool")
    elif body["stale"] != (xcache == "STALE"):
        problems.append(f"stale {body['stale']} with x-cache {xcache}")
    if not isinstance(body.get("data_as_of"), str):
        problems.append("no data_as_of")
    presets = body.get("presets")
    if not isinstance(presets, list) or len(presets) != 3:
        problems.append("presets is not a list of 3")
    else:
        for i, p in enumerate(presets, 1):
            if p.get("preset_no") != i or not isinstance(p.get("items"), list) or "totals" not in p:
                problems.append(f"preset {i} malformed")
                break
    head = body.get("headline")
    if not isinstance(head, dict):
        problems.append("no headline")
    else:
        for k in ("meso", "starforce_meso", "potential_meso", "items"):
            v = head.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                problems.append(f"headline.{k} {v!r}")
        if head.get("preset_no") not in (1, 2, 3):
            problems.append(f"headline.preset_no {head.get('preset_no')!r}")
    if problems:
        return resp.failure("body shape: " + "; ".join(problems[:4]))
    resp.success()


# --- users -------------------------------------------------------------------------------------------------

_host_rr = itertools.count()


class GatewayUser(FastHttpUser):
    """Base: sticky to one gateway of LOCUST_HOSTS (round robin over users), gzip on every read."""

    abstract = True
    wait_time = between(WAIT_MIN, WAIT_MAX)
    # Plenty of connections per user is not needed: every user waits for its answer.
    concurrency = 1
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, environment):
        if HOSTS:
            self.host = HOSTS[next(_host_rr) % len(HOSTS)]
        super().__init__(environment)
        self.like_seen: dict[str, int] = {}

    def read(
        self,
        name: str,
        label: str = "expectation",
        expect_stale: bool | None = False,
        query: str = "",
        full: bool | None = None,
    ):
        _note_name(name)
        with self.client.get(
            f"/api/v4/characters/{name}/expectation{query}",
            headers={"Accept-Encoding": "gzip"},
            name=label,
            catch_response=True,
        ) as resp:
            _note_event("read", name, resp)
            check_expectation(resp, name, expect_stale, label, random.random() < FULL_CHECK if full is None else full)

    def like(self, name: str):
        liker = uuid.uuid4().hex[:20]
        with self.client.post(
            f"/api/v2/characters/{name}/like",
            headers={"x-liker-id": liker},
            name="like",
            catch_response=True,
        ) as resp:
            _note_like(self.host, name, liker, resp)
            _note_event("like", name, resp)
            if resp.status_code != 200:
                return resp.failure(f"status {resp.status_code}: {(resp.text or '')[:160]}")
            try:
                body = resp.json()
            except ValueError:
                return resp.failure("like answer is not JSON")
            n = body.get("like_count")
            if body.get("liked") is not True or not isinstance(n, int) or n < 1:
                return resp.failure(f"like answer {body!r}")
            self._monotonic(resp, name, n)
        # Sometimes read it back with the liker: liked, and still not below what this user saw.
        if random.random() < 0.2:
            with self.client.get(
                f"/api/v2/characters/{name}/like?liker={liker}",
                name="like?liker",
                catch_response=True,
            ) as resp:
                _note_event("like-read", name, resp)
                if resp.status_code != 200:
                    return resp.failure(f"status {resp.status_code}: {(resp.text or '')[:160]}")
                body = resp.json()
                if body.get("liked") is not True:
                    return resp.failure(f"liker {liker} not reported as liked: {body!r}")
                self._monotonic(resp, name, body.get("like_count"))

    def _monotonic(self, resp, name: str, n) -> None:
        prev = self.like_seen.get(name, 0)
        if not isinstance(n, int) or n < prev:
            resp.failure(f"like_count went down: saw {prev}, now {n}")
        else:
            self.like_seen[name] = n
            resp.success()


class ReaderUser(GatewayUser):
    @tag("reader")
    @task
    def read_expectation(self):
        self.read(zipf_name())


class HotkeyUser(GatewayUser):
    @tag("hotkey")
    @task
    def read_hot(self):
        self.read(HOT_NAME, label="hot expectation")


class LikerUser(GatewayUser):
    @tag("liker")
    @task
    def like_someone(self):
        self.like(zipf_name())


class MixedUser(GatewayUser):
    @tag("mixed")
    @task(3)
    def read_expectation(self):
        self.read(zipf_name())

    @tag("mixed")
    @task(1)
    def like_someone(self):
        self.like(zipf_name())


_cold = itertools.count()


class OutageUser(GatewayUser):
    # A warmed name is answered 200 from the last good copy; `stale` in the body must match x-cache (checked
    # on every response here). See _setup_outage for why HIT is allowed with LOCUST_OUTAGE_WARM_XCACHE=ANY.
    @tag("outage")
    @task(8)
    def read_warm(self):
        self.read(outage_name(), label="warm expectation", expect_stale=OUTAGE_STRICT or None, full=True)

    # A forced refresh must ask the upstream, which is down: always STALE with "stale": true.
    @tag("outage")
    @task(1)
    def refresh_warm(self):
        self.read(outage_name(), label="warm expectation?force=true", expect_stale=True, query="?force=true", full=True)

    @tag("outage")
    @task(1)
    def read_never_seen(self):
        name = f"x{RUN_ID}{next(_cold) % 100000}"
        with self.client.get(
            f"/api/v4/characters/{name}/expectation",
            headers={"Accept-Encoding": "gzip"},
            name="never-seen expectation (503 expected)",
            catch_response=True,
        ) as resp:
            if resp.status_code != 503:
                return resp.failure(f"never-seen name during the outage: status {resp.status_code}, expected 503")
            if not resp.headers.get("retry-after"):
                return resp.failure("503 without Retry-After")
            try:
                code = resp.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                return resp.failure("503 without the JSON error shape")
            if not code:
                return resp.failure("503 with an empty error code")
            resp.success()


# --- outage set-up / tear-down (master or local runner only) ----------------------------------------------


def _outage_selected(environment) -> bool:
    return any(u.__name__ == "OutageUser" for u in environment.user_classes)


def _gateways(environment) -> list[str]:
    return HOSTS or [environment.host.rstrip("/")]


@events.init.add_listener
def _setup_outage(environment, **_kw):
    """Warms the outage's names, injects the outage, and puts every warmed name on the stale path.

    A still-fresh cache entry is a HIT even while the upstream is down (no upstream call is needed), so
    after injecting the outage each warmed name gets one forced refresh on every gateway: the gateway drops
    its in-process (L1) copy, cannot reach the upstream, and answers from the last good copy as STALE.

    - Single gateway (no Redis): that was the only cached copy, so from then on plain reads of the name are
      STALE too (the expectation is recomputed from the database snapshot and kept with no freshness of its
      own). OutageUser requires exactly that (LOCUST_OUTAGE_WARM_XCACHE=STALE, the default).
    - Cluster (Redis L2): `force` drops L1 only; the L2 copy is still fresh for up to 15 minutes and a fresh
      copy is served as a HIT whatever the upstream's state, so plain reads may be HIT or STALE
      (LOCUST_OUTAGE_WARM_XCACHE=ANY, which run.sh --cluster sets); forced refreshes are still STALE.

    Runs in `init` (before the run's clock starts), on the master or local runner only. Upstream counters
    are reset afterwards, so /_sim/stats counts the run.
    """
    if isinstance(environment.runner, WorkerRunner) or not _outage_selected(environment):
        return
    if not SIM_URL:
        raise SystemExit("OutageUser needs LOCUST_SIM_URL (the standalone simulator's base URL)")
    if not (environment.host or HOSTS):
        raise SystemExit("OutageUser needs --host or LOCUST_HOSTS")
    gws = _gateways(environment)
    s = requests.Session()
    t0 = time.monotonic()
    s.delete(f"{SIM_URL}/_sim/faults", timeout=5).raise_for_status()
    names = NAMES[: min(OUTAGE_WARM, N_CHARACTERS)]

    def get(gw, name, query=""):
        return s.get(
            f"{gw}/api/v4/characters/{name}/expectation{query}", headers={"Accept-Encoding": "gzip"}, timeout=30
        )

    pool = gevent.pool.Pool(8)
    warm = pool.map(lambda n: get(gws[0], n).status_code, names)
    if any(c != 200 for c in warm):
        raise SystemExit(f"outage set-up: warming failed: statuses {sorted(set(warm))}")
    s.post(f"{SIM_URL}/_sim/faults", json={"outage": True}, timeout=5).raise_for_status()
    log.warning("outage injected at %s/_sim/faults after warming %d names", SIM_URL, len(names))

    def to_stale(name):
        # The database snapshot is written in the background after the warm-up load: retry briefly.
        for _ in range(20):
            for gw in gws:
                r = get(gw, name, "?force=true")
                if r.status_code != 200 or r.headers.get("x-cache") != "STALE":
                    break
            else:
                return True
            gevent.sleep(0.25)
        return False

    ok = pool.map(to_stale, names)
    _outage_setup.update(
        warmed=len(names),
        stale_after_setup=sum(ok),
        gateways=len(gws),
        setup_seconds=round(time.monotonic() - t0, 1),
    )
    if not all(ok):
        log.error("outage set-up: %d of %d warmed names do not answer STALE", len(ok) - sum(ok), len(ok))
    s.post(f"{SIM_URL}/_sim/stats/reset", timeout=5).raise_for_status()


@events.quitting.add_listener
def _teardown(environment, **_kw):
    if not isinstance(environment.runner, WorkerRunner) and _outage_selected(environment) and SIM_URL:
        try:
            requests.delete(f"{SIM_URL}/_sim/faults", timeout=5)
        except requests.RequestException as e:
            log.error("could not remove the outage at %s: %s", SIM_URL, e)
    _write_extra(environment)
