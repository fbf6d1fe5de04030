#!/usr/bin/env bash
# The long fuzz campaign (docs/testing.md): for each identity, restore the
# database from a copy made right after seed_demo, serve it with gunicorn,
# sign in as the demo user and run every Schemathesis phase and check.
#
#   DB=bpmos_me SEED_DB=bpmos_me_seed PORT=8641 EXAMPLES=200 MAX_TIME=600 \
#       bench/fuzz_campaign.sh operator planner supervisor plant-head auditor anonymous
#
# Reports (ndjson, junit) land in $OUT/<identity>/.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DB:?}" "${SEED_DB:?}"
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-8641}
EXAMPLES=${EXAMPLES:-200}
OUT=${OUT:-/tmp/fuzz-campaign}
SEED=${SEED:-20261203}
export DATABASE_URL="$PG/$DB" BPMOS_ACCESS_TOKEN_MINUTES=${BPMOS_ACCESS_TOKEN_MINUTES:-1440}
export SCHEMATHESIS_HOOKS=bench.fuzz_hooks
PASSWORD=${BPMOS_DEMO_PASSWORD:-bpmos-demo-2026}
for who in "$@"; do
    mkdir -p "$OUT/$who"
    dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
    createdb -h 127.0.0.1 -U postgres -T "$SEED_DB" "$DB"
    .venv/bin/gunicorn bpmos.wsgi -b "127.0.0.1:$PORT" -w 2 --timeout 120 \
        >"$OUT/$who/gunicorn.log" 2>&1 &
    server=$!
    for _ in $(seq 60); do curl -sf "127.0.0.1:$PORT/api/health" >/dev/null 2>&1 && break; sleep 1; done
    auth=()
    if [ "$who" != anonymous ]; then
        token=$(curl -s -X POST "127.0.0.1:$PORT/api/auth/login" -H 'Content-Type: application/json' \
            -d "{\"username\":\"$who\",\"password\":\"$PASSWORD\"}" |
            .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access"])')
        auth=(-H "Authorization: Bearer $token")
    fi
    start=$(date +%s)
    set +e
    .venv/bin/schemathesis run "http://127.0.0.1:$PORT/api/schema/?format=json" --url "http://127.0.0.1:$PORT" "${auth[@]}" \
        -n "$EXAMPLES" --seed "$SEED" ${MAX_TIME:+--max-time "$MAX_TIME"} \
        --phases examples,coverage,fuzzing,stateful --checks all \
        --exclude-checks not_a_server_error --continue-on-failure \
        --suppress-health-check all --request-timeout 60 \
        --report ndjson,junit --report-dir "$OUT/$who" >"$OUT/$who/run.log" 2>&1
    echo "$who: exit $? in $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
    set -e
    kill "$server"; wait "$server" 2>/dev/null || true
done
