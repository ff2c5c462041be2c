#!/usr/bin/env bash
# The API contract, checked against a live server: builds lethe, starts `lethe demo` on a
# free local port with a fresh data directory, and runs schemathesis (from PyPI, in the
# virtual environment target/schemathesis/venv) against the OpenAPI document it serves at
# /api/openapi.json, with the demo's officer token. Fails on any 5xx, any response that
# breaks the document (schema, status code, content type, headers), or a panic in the
# server log. Bounded: ST_MAX_EXAMPLES test cases per operation (default 25) and a hard
# limit of ST_TIMEOUT seconds (default 240) on the schemathesis run.
#
#   scripts/schemathesis.sh            # as CI runs it
#   ST_SEED=7 ST_MAX_EXAMPLES=100 scripts/schemathesis.sh
#
# Before the run, scripts/schemathesis_seed.py drives a few requests through the workflow
# and writes a schemathesis config whose dictionaries feed their ids (and the demo's e-mail
# addresses) to part of the generated cases, so success responses are checked too.
# Schemathesis runs destructive workflow actions (deny, cancel, execute, retention runs)
# on the demo data: the data directory is recreated on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION="${ST_VERSION:-4.32.5}"
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-25}"
ST_TIMEOUT="${ST_TIMEOUT:-240}"
ST_SEED="${ST_SEED:-20261123}"
ST_WORKERS="${ST_WORKERS:-2}"
DEMO_CONTACTS="${ST_DEMO_CONTACTS:-300}"
work="$PWD/target/schemathesis"
venv="$work/venv"
data="$work/data"
report="$work/report"
server_log="$work/server.log"

log() { printf '\n== %s\n' "$*"; }

log "schemathesis $ST_VERSION (PyPI, $venv)"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
"$venv/bin/schemathesis" --version

log "build lethe"
cargo build --quiet --bin lethe
bin="target/debug/lethe"

port="${ST_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}"
base="http://127.0.0.1:$port"
rm -rf "$data" "$report"
mkdir -p "$data" "$report"

log "lethe demo on $base ($DEMO_CONTACTS contacts, data in $data)"
# The API's rate limits stay on but high, so schemathesis's bursts are not answered with
# 429s (a 429 would still conform to the document).
LETHE_DATA_DIR="$data" \
  LETHE_LISTEN="127.0.0.1:$port" \
  LETHE_RATE_LIMIT_API_PER_MIN=1000000 \
  LETHE_RATE_LIMIT_API_BURST=100000 \
  LETHE_RATE_LIMIT_API_IP_PER_MIN=1000000 \
  LETHE_RATE_LIMIT_API_IP_BURST=100000 \
  LETHE_LOG="${LETHE_LOG:-info}" \
  "$bin" demo --contacts "$DEMO_CONTACTS" >"$server_log" 2>&1 &
server_pid=$!
stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT

up=""
for _ in $(seq 1 120); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "lethe demo exited early:" >&2
    tail -n 40 "$server_log" >&2
    exit 1
  fi
  if curl -fsS "$base/health" >/dev/null 2>&1; then
    up=1
    break
  fi
  sleep 0.5
done
if [ -z "$up" ]; then
  echo "lethe demo did not answer $base/health" >&2
  tail -n 40 "$server_log" >&2
  exit 1
fi
token="$(sed -n 's/^ *export TOKEN=//p' "$server_log" | head -n 1)"
if [ -z "$token" ]; then
  echo "no officer token in the demo's output ($server_log)" >&2
  exit 1
fi
curl -fsS "$base/api/openapi.json" -o "$work/openapi.json"
echo "document: $base/api/openapi.json ($(wc -c <"$work/openapi.json") bytes)"

log "seed the demo (requests through the workflow, a hold, a retention run)"
python3 scripts/schemathesis_seed.py "$base" "$token" "$data/demo-crm.sqlite3" "$work/schemathesis.toml"

log "schemathesis run (max $ST_MAX_EXAMPLES examples per operation, seed $ST_SEED, limit ${ST_TIMEOUT}s)"
started=$(date +%s)
set +e
# From inside $work: schemathesis keeps its cache (.schemathesis/) in the working directory.
(cd "$work" && timeout --signal=INT --kill-after=15 "$ST_TIMEOUT" \
  "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$ST_MAX_EXAMPLES" \
  --seed "$ST_SEED" \
  --workers "$ST_WORKERS" \
  --request-timeout 30 \
  --suppress-health-check too_slow,filter_too_much \
  --report junit,ndjson --report-dir "$report" \
  --output-truncate false)
status=$?
set -e
echo "schemathesis exited with $status after $(($(date +%s) - started))s"

if grep -n "panicked" "$server_log"; then
  echo "the server panicked (see $server_log)" >&2
  status=1
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 130 ]; then
  echo "schemathesis did not finish within ${ST_TIMEOUT}s" >&2
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (server log: $server_log, reports: $report)" >&2
  exit "$status"
fi
log "schemathesis passed"
