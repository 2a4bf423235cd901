#!/usr/bin/env bash
# make ui-test: the dashboard in headless Chromium against a demo database.
#
#  1. installs what is missing (scripts/install-deps.sh; Debian's chromium and python3),
#  2. builds assay (or uses $ASSAY_BIN),
#  3. starts a throwaway PostgreSQL (initdb + pg_ctl, as the postgres user when run as root)
#     unless $DATABASE_URL is set,
#  4. runs `assay demo --database-url …`, which leaves its data in schema assay_demo,
#  5. prints `assay windows` and `assay trace` for that data,
#  6. serves it with `assay dashboard --schema assay_demo --http 127.0.0.1:PORT`,
#  7. loads the overview, a window's drill-down and a trace in headless Chromium, takes
#     screenshots and dumps the DOM after the scripts ran, and checks them: every scorer's chart
#     has points for at least $UI_TEST_MIN_POINTS windows (default 3) and a Wilson band, the
#     window table, config, pipeline and dead-letter panels are filled, the drill-down lists
#     sampled traces with assessments, the trace view has its span tree.
#
# Screenshots and DOM dumps go to $UI_TEST_OUT (default /tmp/assay-ui-test), never into the
# repository. Ends with "ui-test: N passed, M failed"; exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/opt/swift/usr/bin:$PATH"
SWIFT="${SWIFT:-swift}"
OUT="${UI_TEST_OUT:-/tmp/assay-ui-test}"
MIN_POINTS="${UI_TEST_MIN_POINTS:-3}"
TRACES="${UI_TEST_TRACES:-2000}"
SWIFT_BUILD_FLAGS="${SWIFT_BUILD_FLAGS:-}"

say() { echo "ui-test: $*" >&2; }

# --- 1. Packages ---------------------------------------------------------------------------
scripts/install-deps.sh
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root (or sudo) to install: ${need[*]}"; exit 1; }
    sudo=sudo
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- 2. Build ------------------------------------------------------------------------------
if [ -n "${ASSAY_BIN:-}" ]; then
  ASSAY="$ASSAY_BIN"
else
  # shellcheck disable=SC2086
  "$SWIFT" build $SWIFT_BUILD_FLAGS --product assay
  # shellcheck disable=SC2086
  ASSAY="$("$SWIFT" build $SWIFT_BUILD_FLAGS --show-bin-path)/assay"
fi
[ -x "$ASSAY" ] || { say "no assay binary at $ASSAY"; exit 1; }

mkdir -p "$OUT"
rm -f "$OUT"/*.png "$OUT"/*.html "$OUT"/*.txt
WORK="$(mktemp -d /tmp/assay-ui-test-work.XXXXXX)"
DASHBOARD_PID=""
PG_BIN=""
PG_DATA=""
AS_POSTGRES=()

cleanup() {
  local status=$?
  if [ -n "$DASHBOARD_PID" ]; then kill "$DASHBOARD_PID" 2>/dev/null || true; wait "$DASHBOARD_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DATA" ]; then "${AS_POSTGRES[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- 3. PostgreSQL -------------------------------------------------------------------------
if [ -n "${DATABASE_URL:-}" ]; then
  URL="$DATABASE_URL"
  say "using \$DATABASE_URL (schema assay_demo is dropped and recreated)"
else
  initdb="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1)"
  [ -n "$initdb" ] || { say "no initdb under /usr/lib/postgresql"; exit 1; }
  PG_BIN="$(dirname "$initdb")"
  PG_DATA="$WORK/pgdata"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$WORK"
    AS_POSTGRES=(/usr/sbin/runuser -u postgres --)
  fi
  "${AS_POSTGRES[@]}" "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U postgres -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; exit 1; }
  PG_PORT="$(free_port)"
  "${AS_POSTGRES[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
    || { cat "$WORK/postgres.log" >&2; exit 1; }
  URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  say "throwaway PostgreSQL on 127.0.0.1:$PG_PORT"
fi

# --- 4. Demo data --------------------------------------------------------------------------
# The demo recreates its schema each time; on a loaded machine it can time out, so it gets a
# second try before the test gives up.
run_demo() {
  say "running assay demo ($TRACES traces)"
  "$ASSAY" demo --database-url "$URL" --traces "$TRACES" --timeout-seconds 300 >"$OUT/demo.txt" 2>&1
}
if ! run_demo; then
  tail -n 5 "$OUT/demo.txt" >&2
  say "the demo failed; trying once more"
  run_demo || { cat "$OUT/demo.txt" >&2; say "the demo failed"; exit 1; }
fi
tail -n 8 "$OUT/demo.txt" >&2

# --- 5. The CLI reports --------------------------------------------------------------------
"$ASSAY" windows --database-url "$URL" --schema assay_demo --last 10 >"$OUT/windows.txt"
"$ASSAY" windows --database-url "$URL" --schema assay_demo --last 10 --json >"$OUT/windows.json"
head -n 14 "$OUT/windows.txt" >&2

# --- 6. The dashboard server ---------------------------------------------------------------
HTTP_PORT="$(free_port)"
BASE="http://127.0.0.1:$HTTP_PORT"
"$ASSAY" dashboard --database-url "$URL" --schema assay_demo --http "127.0.0.1:$HTTP_PORT" >"$WORK/dashboard.log" 2>&1 &
DASHBOARD_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$DASHBOARD_PID" 2>/dev/null || { cat "$WORK/dashboard.log" >&2; say "assay dashboard exited"; exit 1; }
  sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null || { cat "$WORK/dashboard.log" >&2; say "assay dashboard is not ready"; exit 1; }
# The script lives in a Swift string (DashboardAssets.swift): a syntax check where node exists.
if command -v node >/dev/null 2>&1; then
  curl -fsS "$BASE/dashboard.js" >"$WORK/dashboard.js"
  node --check "$WORK/dashboard.js" || { say "dashboard.js does not parse"; exit 1; }
fi

# A window with sampled traces, and one of its traces with a span tree, for the drill-down views.
read -r WINDOW TRACE < <(python3 - "$BASE" <<'PY'
import json, sys, urllib.request, urllib.parse
base = sys.argv[1]
windows = json.load(urllib.request.urlopen(base + "/api/windows?limit=10"))["windows"]
scored = sorted((w for w in windows if w["state"] == "scored"), key=lambda w: -w["traces"])
for window in scored:
    detail = json.load(urllib.request.urlopen(base + "/api/windows/" + urllib.parse.quote(window["window_start"], safe="")))
    # The trace with the most assessments that applied (a RAG trace has the deepest span tree).
    ranked = sorted(detail["traces"], key=lambda t: -sum(a["outcome"] != "not_applicable" for a in t["assessments"]))
    if ranked:
        print(window["window_start"], ranked[0]["trace_id"])
        sys.exit(0)
print("none none")
PY
)
[ "$WINDOW" != none ] || { say "the demo left no scored window with sampled traces"; exit 1; }
"$ASSAY" trace "$TRACE" --database-url "$URL" --schema assay_demo >"$OUT/trace.txt"
head -n 12 "$OUT/trace.txt" >&2
say "drill-down: window $WINDOW, trace $TRACE"

# --- 7. Headless Chromium ------------------------------------------------------------------
chrome() {
  # --no-sandbox: Chromium's sandbox cannot start as root (CI runs as root); the page is ours.
  # --virtual-time-budget lets the page's fetches and rendering finish before the capture.
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --no-first-run \
    --disable-extensions --disable-background-networking --disable-sync --user-data-dir="$WORK/chromium" \
    --window-size=1400,2000 --virtual-time-budget=8000 "$@" 2>>"$WORK/chromium.log"
}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
OVERVIEW="$BASE/"
WINDOW_URL="$BASE/#/window/$(enc "$WINDOW")"
TRACE_URL="$BASE/#/trace/$(enc "$TRACE")"

capture() {  # name url
  chrome --screenshot="$OUT/$1.png" "$2" >/dev/null
  chrome --dump-dom "$2" >"$OUT/$1.html"
}
capture overview "$OVERVIEW"
capture window "$WINDOW_URL"
capture trace "$TRACE_URL"

# --- 8. Checks -----------------------------------------------------------------------------
set +e
python3 - "$OUT" "$MIN_POINTS" "$OUT/windows.json" <<'PY'
import json, sys
from html.parser import HTMLParser

out, min_points, windows_json = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Page(HTMLParser):
    def __init__(self, path):
        super().__init__()
        self.elements = []
        self.text = []
        with open(path, encoding="utf-8") as handle:
            self.feed(handle.read())
    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
    def handle_data(self, data):
        self.text.append(data)
    def find(self, tag=None, cls=None, id=None):
        found = []
        for name, values in self.elements:
            if tag is not None and name != tag:
                continue
            if cls is not None and cls not in (values.get("class") or "").split():
                continue
            if id is not None and values.get("id") != id:
                continue
            found.append(values)
        return found

passed, failed = 0, 0
def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what}")

overview = Page(f"{out}/overview.html")
body = overview.find("body")
check(body and body[0].get("data-state") == "ready", "overview: the page loaded its data (body data-state=ready)")
charts = overview.find("svg")
scorers = [c.get("data-scorer") for c in charts if c.get("data-scorer")]
expected = sorted({s["scorer_name"] for w in json.load(open(windows_json))["windows"] for s in w["scorers"]})
check(sorted(scorers) == expected, f"overview: one chart per scorer ({len(scorers)}: {', '.join(scorers)})")
points = [p for p in overview.find("circle", cls="point")]
per_scorer = {name: len({p.get("data-window") for p in points if p.get("data-scorer") == name}) for name in scorers}
thin = {name: count for name, count in per_scorer.items() if count < min_points}
check(scorers and not thin, f"overview: every chart has points for at least {min_points} windows ({per_scorer})")
values_ok = all(0 <= float(p["data-wilson-lower"]) <= float(p["data-pass-rate"]) <= float(p["data-wilson-upper"]) <= 1 for p in points)
check(points and values_ok, f"overview: {len(points)} points, each inside its Wilson interval")
bands = overview.find("polygon", cls="band") + overview.find("rect", cls="band")
check(len(bands) >= len(scorers), f"overview: Wilson bands drawn ({len(bands)})")
rows = overview.find("tr")
check(len([r for r in rows if r.get("data-scorer")]) >= len(scorers), "overview: the window table has per-scorer rows")
text = " ".join(overview.text)
check("Monitor" in text and "demo" in text, "overview: the monitor panel shows the demo monitor")
check("Consumer lag: unknown" in text, "overview: consumer lag shown as unknown (no Kafka consumer in assay dashboard)")
check(bool(overview.find(id="dead-letter-count")) and "messages could not be stored" in text, "overview: dead letters counted with reasons")

window = Page(f"{out}/window.html")
check(window.find("body")[0].get("data-state") == "ready", "window view loaded")
sampled = [r for r in window.find("tr") if r.get("data-trace")]
check(len(sampled) >= 1, f"window view: {len(sampled)} sampled traces listed")
check(len(window.find("span", cls="badge")) >= len(sampled), "window view: assessments with outcomes")

trace = Page(f"{out}/trace.html")
check(trace.find("body")[0].get("data-state") == "ready", "trace view loaded")
spans = trace.find("div", cls="span")
check(len(spans) >= 1 and any(s.get("data-depth") == "0" for s in spans), f"trace view: span tree with {len(spans)} spans")
check(bool(trace.find(id="trace-assessments")), "trace view: assessments table with rationales")

print(f"ui-test: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
status=$?
set -e
say "screenshots and DOM dumps in $OUT (overview.png, window.png, trace.png)"
exit $status
