#!/usr/bin/env bash
# Measures each hot path of app-rows and app-blob against its floor, side by side, and prints one
# table of medians and ratios per database backend. See BENCHMARKS.md for how to read it.
#
#   bench/run.sh                 SQLite, then PostgreSQL (if it answers on 127.0.0.1:5432)
#   BENCH_BACKENDS=sqlite bench/run.sh
#   BENCH_APPS=rows bench/run.sh  only app-rows's rows of the table (or blob: only app-blob's;
#                                blob-crossover: app-blob's PUT in rows against in files by size,
#                                SQLite; instances: only those of several app-rows instances,
#                                PostgreSQL)
#   BENCH_RECORD=1 bench/run.sh  also prepend the result to BENCHMARKS.md
#
# Knobs (environment): BENCH_ROUNDS (A/B alternations, default 5), BENCH_SECS (seconds per
# measurement, default 5), BENCH_SERVICE_CPU / BENCH_LOAD_CPU (default 0 / 1), BENCH_POSTGRES
# (server URL without a database, default postgres://postgres@127.0.0.1:5432).
#
# The service is pinned to one core and the load generator (wrk) to the other; the in-process
# floors run on the service's core, on the service's own database (same file, same pragmas).
# Several instances (PostgreSQL only) all run on the service's core, and HAProxy with wrk on the
# other.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-5}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
APPS=${BENCH_APPS:-rows blob blob-crossover instances}
SVC_CPU=${BENCH_SERVICE_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PG=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
export BENCH_WRK="$ROOT/bench/wrk"
RELEASE="${CARGO_TARGET_DIR:-$ROOT/target}/release"
BENCH="$RELEASE/bench"
OUT=$(mktemp /tmp/bench-result.XXXXXX.md)

log() { echo "[bench] $*" >&2; }

# --- tools ------------------------------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    as_root apt-get install -y wrk >/dev/null 2>&1 ||
        { as_root apt-get update >/dev/null && as_root apt-get install -y wrk >/dev/null; }
fi
command -v taskset >/dev/null || as_root apt-get install -y util-linux >/dev/null
command -v curl >/dev/null || as_root apt-get install -y curl >/dev/null
[[ " $APPS " != *" instances "* ]] || command -v haproxy >/dev/null ||
    as_root apt-get install -y haproxy >/dev/null

log "building release binaries"
(cd "$ROOT" && cargo build --release --quiet -p app-rows -p app-blob -p bench)

# --- helpers ----------------------------------------------------------------------------------
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

SVC_PID=
service_env() { # DATABASE_URL DATA PORT
    export DATABASE_URL="$1" BIND="127.0.0.1:$3" MAIL_TRANSPORT="file:$2/mail" COOKIE_SECURE=false
    # A key kept outside the database (required with PostgreSQL), fresh for each run.
    SECRET_KEY=$(head -c 32 /dev/urandom | base64)
    export SECRET_KEY
    local name
    for name in SIGNUP_IP LOGIN_IP LOGIN_EMAIL FORGOT_IP FORGOT_EMAIL VERIFY_USER EMAIL_CHANGE_USER \
        PASSWORD_USER PUSH_USER SAVE_USER; do
        export "RATE_LIMIT_$name=off"
    done
}
start_service() { # BIN DATA PORT
    taskset -c "$SVC_CPU" "$1" serve >>"$2/service.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 600); do
        curl -fs "http://127.0.0.1:$3/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$SVC_PID" 2>/dev/null || { tail -20 "$2/service.log" >&2; exit 1; }
        sleep 0.05
    done
    log "the service did not become ready"; exit 1
}
stop_service() {
    [ -n "$SVC_PID" ] || return 0
    kill -TERM "$SVC_PID" 2>/dev/null || true
    wait "$SVC_PID" 2>/dev/null || true
    SVC_PID=
}
INST_PIDS=() HAP_PID=
stop_instances() {
    local pid
    for pid in "${INST_PIDS[@]}" $HAP_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    INST_PIDS=() HAP_PID=
}
trap 'stop_service; stop_instances' EXIT
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SVC_PID/status"; }

# wrk_run FIELD CONNS SCRIPT URL [SECS]: prints rps or p99_us of one run.
wrk_run() {
    local out
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"${5:-$SECS}s" --timeout 10s -s "$BENCH_WRK/$3" "$4")
    local line
    line=$(grep '^BENCH ' <<<"$out")
    local errors=${line##*errors=}
    [ "$errors" = 0 ] || log "warning: $errors failed requests in $3 $4"
    sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$line"
}
# login_run URL CONNS BODY RETRY [SECS]: prints the BENCH line of overload.lua, logins with the
# body in the file BODY on CONNS connections (one thread each); RETRY=1 waits Retry-After after
# a 503.
login_run() {
    local line
    line=$(BENCH_BODY=$3 BENCH_RETRY=$4 taskset -c "$LOAD_CPU" wrk -t"$2" -c"$2" -d"${5:-$SECS}s" \
        --timeout 10s -s "$BENCH_WRK/overload.lua" "$1" | grep '^BENCH ')
    local errors=${line##*errors=}
    [ "$errors" = 0 ] || log "warning: $errors failed requests in overload.lua $3"
    echo "$line"
}
field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<"$2"; } # field NAME BENCH-LINE
floor() { taskset -c "$SVC_CPU" "$BENCH" "$@"; }
in_unit() { awk -v v="$1" -v k="$2" 'BEGIN {printf "%.1f", v * k}'; }
# cache_hits URL: the session cache's hits and lookups so far, from the service's /metrics.
cache_hits() {
    curl -fs "$1/metrics" | awk '/^auth_session_cache_lookups_total\{/ {n += $2} /result="hit"/ {h += $2}
        END {printf "%d %d", h, n}'
}

has() { [[ " $APPS " == *" $1 "* ]]; }
declare -A A B I
add() { A[$1]="${A[$1]:-} $2"; B[$1]="${B[$1]:-} $3"; }
info() { I[$1]="${I[$1]:-} $2"; } # a figure reported under the table, not as a ratio

# --- app-rows: sessions, login, starvation, overload, push, pull -----------------------------
bench_rows() { # DATABASE_URL DATA
    local url=http://127.0.0.1:18080 data=$2 dir=$2/files
    service_env "$1" "$data" 18080
    start_service "$RELEASE/app-rows" "$data" 18080
    RSS_IDLE=$(peak_rss_mib)
    log "app-rows: signing up and opening 1,000 sessions"
    taskset -c "$LOAD_CPU" "$BENCH" setup-rows --url "$url" --dir "$dir"
    local tokens=$dir/tokens.txt
    # Another account for the legitimate logins under a flood, and the flood's wrong password.
    echo '{"email":"legit@bench.example","password":"real-user-password-1618","session":"bearer"}' \
        >"$dir/legit.json"
    curl -fs -o /dev/null -H 'Content-Type: application/json' -d @"$dir/legit.json" "$url/v1/auth/signup" ||
        { log "could not sign up legit@bench.example"; exit 1; }
    echo '{"email":"login@bench.example","password":"not-the-password-0000","session":"bearer"}' \
        >"$dir/flood.json"

    log "app-rows: warm-up"
    BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run rps 32 get.lua "$url" 2 >/dev/null
    BENCH_BODY=$dir/login.json wrk_run rps 4 login.lua "$url" 2 >/dev/null

    for round in $(seq "$ROUNDS"); do
        log "app-rows: round $round/$ROUNDS"
        add session "$(BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run rps 32 get.lua "$url")" \
            "$(BENCH_PATH=/healthz wrk_run rps 32 get.lua "$url")"

        add login "$(BENCH_BODY=$dir/login.json wrk_run rps 4 login.lua "$url")" \
            "$(floor argon2 --db "$1" --email login@bench.example --threads 4 --secs "$SECS")"

        local quiet flooded
        quiet=$(BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run p99_us 4 get.lua "$url")
        BENCH_BODY=$dir/login.json wrk_run rps 4 login.lua "$url" "$((SECS + 2))" >/dev/null &
        local flood=$!
        sleep 1
        flooded=$(BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run p99_us 4 get.lua "$url")
        wait "$flood"
        add starvation "$flooded" "$quiet"

        # Legitimate logins (another account, one connection, waiting Retry-After after a 503)
        # alone, then under 256 connections flooding wrong passwords: the p99 of their answers.
        local legit_quiet legit_flooded flood_line
        legit_quiet=$(login_run "$url" 1 "$dir/legit.json" 1)
        login_run "$url" 256 "$dir/flood.json" 0 "$((SECS + 2))" >"$dir/flood.out" &
        flood=$!
        sleep 1
        legit_flooded=$(login_run "$url" 1 "$dir/legit.json" 1)
        wait "$flood"
        flood_line=$(cat "$dir/flood.out")
        add overload "$(in_unit "$(field answer_p99_us "$legit_flooded")" 0.001)" \
            "$(in_unit "$(field answer_p99_us "$legit_quiet")" 0.001)"
        info legit_ok "$(field ok "$legit_flooded")"
        info legit_503 "$(field refused "$legit_flooded")"
        info legit_503_ms "$(in_unit "$(field refused_p99_us "$legit_flooded")" 0.001)"
        info legit_ok_ms "$(in_unit "$(field ok_p99_us "$legit_flooded")" 0.001)"
        info flood_ok "$(field ok "$flood_line")"
        info flood_503 "$(field refused "$flood_line")"
        info flood_checks "$(field ok_rps "$flood_line")"
        info flood_max_ms "$(in_unit "$(field max_us "$flood_line")" 0.001)"
        info quiet_logins "$(field ok_rps "$legit_quiet")"

        local batch
        for batch in 100 1000; do
            local rps
            rps=$(BENCH_TOKEN=$(cat "$dir/push.token") BENCH_BATCH=$batch wrk_run rps 1 push.lua "$url")
            add "push$batch" "$(in_unit "$rps" "$batch")" \
                "$(floor rows-push --db "$1" --user "$(cat "$dir/floor.user")" --batch "$batch" --secs "$SECS")"
        done

        local rps
        rps=$(BENCH_PATH="/v1/rows/pull?limit=1000&since=" BENCH_TOKENS=$dir/pull.token \
            BENCH_CURSORS=$dir/cursors.txt wrk_run rps 1 get.lua "$url")
        add pull "$(in_unit "$rps" 1000)" \
            "$(floor rows-pull --db "$1" --user "$(cat "$dir/pull.user")" --page 1000 --secs "$SECS")"
    done
    RSS_FLOOD=$(peak_rss_mib)
    read -r CACHE_HITS CACHE_LOOKUPS <<<"$(cache_hits "$url")"
    stop_service
    log "app-rows: cold start"
    COLD=$(taskset -c "$LOAD_CPU" "$BENCH" cold-start --bin "$RELEASE/app-rows" --url "$url" --cpus "$SVC_CPU")
}

# --- app-blob: put and get of 4 MiB and 64 KiB, memory under 32 uploads of 16 MiB -----------
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SVC_PID/status"; }
blob_env() {
    # 32 accounts each keeping up to 10 versions of 16 MiB (the default MAX_SAVE_BYTES): no
    # quota in the way.
    export BLOB_BYTES_QUOTA=1TiB
    unset SAVE_FILE_THRESHOLD MAX_SAVE_BYTES
}
bench_blob() { # DATABASE_URL DATA
    local url=http://127.0.0.1:18081 data=$2 dir=$2/files sqlite=0 files=$2
    [[ $1 == sqlite://* ]] && sqlite=1 files=${1#sqlite://}.blobs
    service_env "$1" "$data" 18081
    blob_env
    start_service "$RELEASE/app-blob" "$data" 18081
    taskset -c "$LOAD_CPU" "$BENCH" setup-blob --url "$url" --dir "$dir" --kib 4096 --many 32
    taskset -c "$LOAD_CPU" "$BENCH" setup-blob --url "$url" --dir "$dir" --kib 64 --name small
    local token small
    token=$(cat "$dir/blob.token")
    small=$(cat "$dir/small.token")
    etag() { curl -fs -H "Authorization: Bearer $1" "$url/v1/save/meta" | sed -E 's/.*"version":"(\\"[^\\]*\\")".*/\1/; s/\\//g'; }
    for round in $(seq 0 "$ROUNDS"); do
        log "app-blob: round $round/$ROUNDS"
        local put get put_floor disk get_floor put64 get64 put64_floor get64_floor
        put=$(BENCH_TOKEN=$token BENCH_ETAG=$(etag "$token") BENCH_MIB=4 wrk_run rps 1 put.lua "$url")
        if [ "$sqlite" = 1 ]; then
            # Saves of 4 MiB are files beside the database: the floor stores a file as they are.
            disk=$(floor disk-write --dir "$files" --kib 4096 --secs "$SECS")
        else
            put_floor=$(floor blob-put --db "$1" --user "$(cat "$dir/blob.user")" --kib 4096 --secs "$SECS")
            disk=$(floor disk-write --dir "$files" --kib 4096 --secs "$SECS")
        fi
        get=$(BENCH_PATH=/v1/save BENCH_TOKENS=$dir/blob.token wrk_run rps 1 get.lua "$url")
        # A file when the save is one (SQLite), else the SELECT.
        get_floor=$(floor blob-get --db "$1" --user "$(cat "$dir/blob.user")" --secs "$SECS")
        put64=$(BENCH_TOKEN=$small BENCH_ETAG=$(etag "$small") BENCH_KIB=64 wrk_run rps 1 put.lua "$url")
        put64_floor=$(floor blob-put --db "$1" --user "$(cat "$dir/small.user")" --kib 64 --secs "$SECS")
        get64=$(BENCH_PATH=/v1/save BENCH_TOKENS=$dir/small.token wrk_run rps 1 get.lua "$url")
        get64_floor=$(floor blob-get --db "$1" --user "$(cat "$dir/small.user")" --secs "$SECS")
        # Round 0 is the warm-up.
        if [ "$round" -gt 0 ]; then
            if [ "$sqlite" = 1 ]; then
                add put_file "$(in_unit "$put" 4)" "$disk"
                add get_file "$(in_unit "$get" 4)" "$get_floor"
            else
                add put "$(in_unit "$put" 4)" "$put_floor"
                add disk "$(in_unit "$put" 4)" "$disk"
                add get "$(in_unit "$get" 4)" "$get_floor"
            fi
            add put64 "$(in_unit "$put64" 0.0625)" "$put64_floor"
            add get64 "$(in_unit "$get64" 0.0625)" "$get64_floor"
        fi
    done
    # 32 uploads of 16 MiB at once, each on its own account; round 0 (the first save of each
    # account) is the warm-up. The peak is reset before each round (clear_refs 5), so each
    # round's VmHWM is its own.
    local idle peak secs
    for round in $(seq 0 "$ROUNDS"); do
        log "app-blob: 32 uploads of 16 MiB, round $round/$ROUNDS"
        sleep 1
        idle=$(rss_mib)
        echo 5 >"/proc/$SVC_PID/clear_refs"
        secs=$(taskset -c "$LOAD_CPU" "$BENCH" blob-uploads --url "$url" --dir "$dir" --kib 16384)
        peak=$(peak_rss_mib)
        if [ "$round" = 0 ]; then
            # What the first uploads leave kept by the allocator counts as idle from here on.
            info rss_first "$(awk -v p="$peak" -v i="$idle" 'BEGIN {printf "%.1f", p - i}')"
        else
            info rss_idle "$idle"
            info rss_peak "$peak"
            info rss_above "$(awk -v p="$peak" -v i="$idle" 'BEGIN {printf "%.1f", p - i}')"
            info rss_secs "$secs"
        fi
    done
    stop_service
}

# --- where files beat rows: PUT through the service, rows against files, by size (SQLite) -----
CROSS_KIB="16 64 128 256 1024"
bench_crossover() { # DATA
    local data=$1 dir=$1/files kib round
    local rows=http://127.0.0.1:18082 files=http://127.0.0.1:18083
    mkdir -p "$data/rows" "$data/files"
    service_env "sqlite://$data/rows/app-blob.db" "$data/rows" 18082
    blob_env
    SAVE_FILE_THRESHOLD=off start_service "$RELEASE/app-blob" "$data/rows" 18082
    INST_PIDS+=("$SVC_PID")
    DATABASE_URL=sqlite://$data/files/app-blob.db BIND=127.0.0.1:18083 MAIL_TRANSPORT=file:$data/files/mail \
        SAVE_FILE_THRESHOLD=0 start_service "$RELEASE/app-blob" "$data/files" 18083
    INST_PIDS+=("$SVC_PID")
    SVC_PID=
    for kib in $CROSS_KIB; do
        taskset -c "$LOAD_CPU" "$BENCH" setup-blob --url "$rows" --dir "$dir/rows" --kib "$kib" --name "x$kib"
        taskset -c "$LOAD_CPU" "$BENCH" setup-blob --url "$files" --dir "$dir/files" --kib "$kib" --name "x$kib"
    done
    put_in() { # URL DIR KIB
        local token
        token=$(cat "$2/x$3.token")
        BENCH_TOKEN=$token BENCH_ETAG=$(curl -fs -H "Authorization: Bearer $token" "$1/v1/save/meta" |
            sed -E 's/.*"version":"(\\"[^\\]*\\")".*/\1/; s/\\//g') BENCH_KIB=$3 wrk_run rps 1 put.lua "$1"
    }
    for round in $(seq 0 "$ROUNDS"); do
        log "crossover: round $round/$ROUNDS"
        for kib in $CROSS_KIB; do
            local r f
            r=$(put_in "$rows" "$dir/rows" "$kib")
            f=$(put_in "$files" "$dir/files" "$kib")
            # Round 0 is the warm-up.
            if [ "$round" -gt 0 ]; then
                local k
                k=$(awk -v k="$kib" 'BEGIN {print k / 1024}')
                add "cross$kib" "$(in_unit "$f" "$k")" "$(in_unit "$r" "$k")"
            fi
        done
    done
    stop_instances
}

# --- several app-rows instances on one PostgreSQL database -----------------------------------
# cpu_mark: CPU ticks so far of the instances, HAProxy and PostgreSQL, then the busy and all ticks
# of the service's core and of the load's core.
cpu_mark() {
    local inst=0 pid
    for pid in "${INST_PIDS[@]}"; do inst=$((inst + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$inst $(awk '{print $14 + $15}' "/proc/$HAP_PID/stat")" \
        "$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {s += $14 + $15} END {print s + 0}')" \
        "$(awk -v s="cpu$SVC_CPU" -v l="cpu$LOAD_CPU" '$1 == s || $1 == l {
            b[$1] = $2 + $3 + $4 + $7 + $8 + $9; a[$1] = b[$1] + $5 + $6 }
            END {print b[s], a[s], b[l], a[l]}' /proc/stat)"
}
hap_stats() { curl -fs "http://127.0.0.1:18097/stats;csv" | sed '1s/^# //'; }
cpu_info() { # KEY BEFORE AFTER: cores used by each, and how busy each pinned core was (%)
    local i0 h0 p0 sb0 sa0 lb0 la0 i1 h1 p1 sb1 sa1 lb1 la1
    read -r i0 h0 p0 sb0 sa0 lb0 la0 <<<"$2"
    read -r i1 h1 p1 sb1 sa1 lb1 la1 <<<"$3"
    local ticks=$((sa1 - sa0))
    info "$1_inst" "$(awk -v d=$((i1 - i0)) -v t=$ticks 'BEGIN {printf "%.2f", d / t}')"
    info "$1_hap" "$(awk -v d=$((h1 - h0)) -v t=$ticks 'BEGIN {printf "%.2f", d / t}')"
    info "$1_pg" "$(awk -v d=$((p1 - p0)) -v t=$ticks 'BEGIN {printf "%.2f", d / t}')"
    info "$1_svc" "$(awk -v d=$((sb1 - sb0)) -v t=$ticks 'BEGIN {printf "%.0f", 100 * d / t}')"
    info "$1_load" "$(awk -v d=$((lb1 - lb0)) -v t=$((la1 - la0)) 'BEGIN {printf "%.0f", 100 * d / t}')"
}

# Three app-rows instances (ports 18091-18093) on one database, with one SECRET_KEY, all on the
# service's core; HAProxy on the load's core with one frontend per fleet size: 18094 balances
# over the first instance, 18095 over the first two, 18096 over all three.
bench_instances() { # DATABASE_URL DATA
    local data=$2 dir=$2/files i
    local direct=http://127.0.0.1:18091 second=http://127.0.0.1:18092
    service_env "$1" "$data" 18091
    for i in 1 2 3; do
        mkdir -p "$data/i$i"
        BIND=127.0.0.1:$((18090 + i)) MAIL_TRANSPORT=file:$data/i$i/mail \
            start_service "$RELEASE/app-rows" "$data/i$i" $((18090 + i))
        INST_PIDS+=("$SVC_PID")
        SVC_PID=
    done
    # Until every instance listens for the others' announcements, its session cache serves
    # nothing and its long-polls hear only pushes made through it.
    local listening=0
    for _ in $(seq 200); do
        listening=$(psql -Atq "$1" -c "SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND query LIKE 'LISTEN%'")
        [ "$listening" -ge 3 ] && break
        sleep 0.05
    done
    [ "$listening" -ge 3 ] || { log "only $listening instances listen"; exit 1; }

    local cfg=$data/haproxy.cfg n
    {
        printf 'global\n    maxconn 4096\n    nbthread 1\n\n'
        printf 'defaults\n    mode http\n    timeout connect 5s\n    timeout client 75s\n'
        printf '    timeout server 75s\n    timeout http-request 10s\n    option http-keep-alive\n'
        printf '    default-server check inter 1s fall 2 rise 2\n\n'
        printf 'listen stats\n    bind 127.0.0.1:18097\n    stats enable\n    stats uri /stats\n'
        for n in 1 2 3; do
            printf '\nfrontend fleet%d\n    bind 127.0.0.1:%d\n    option forwardfor\n' "$n" $((18093 + n))
            printf '    default_backend fleet%d\n\nbackend fleet%d\n    balance roundrobin\n' "$n" "$n"
            printf '    option httpchk GET /readyz\n    http-check expect status 200\n'
            for i in $(seq "$n"); do printf '    server i%d 127.0.0.1:%d\n' "$i" $((18090 + i)); done
        done
    } >"$cfg"
    taskset -c "$LOAD_CPU" haproxy -db -f "$cfg" >>"$data/haproxy.log" 2>&1 &
    HAP_PID=$!
    local up=0
    for _ in $(seq 200); do
        up=$(hap_stats | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; next}
            $2 != "FRONTEND" && $2 != "BACKEND" && $c["status"] ~ /^UP/ {n++} END {print n + 0}') || true
        [ "$up" = 6 ] && break
        kill -0 "$HAP_PID" 2>/dev/null || { tail -20 "$data/haproxy.log" >&2; exit 1; }
        sleep 0.1
    done
    [ "$up" = 6 ] || { log "HAProxy has $up of 6 servers up"; exit 1; }

    log "instances: signing up and opening 1,000 sessions"
    taskset -c "$LOAD_CPU" "$BENCH" setup-rows --url "$direct" --dir "$dir" --pull-rows 1000
    local tokens=$dir/tokens.txt
    log "instances: warm-up"
    for n in 1 2 3; do
        BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run rps 32 get.lua "http://127.0.0.1:$((18093 + n))" 2 >/dev/null
    done

    local round keys tasks
    for round in $(seq "$ROUNDS"); do
        log "instances: round $round/$ROUNDS"
        for keys in distinct:1 distinct:4 hot:4; do
            tasks=${keys#*:}
            keys=${keys%:*}
            add "limit_${keys}_$tasks" \
                "$(floor rate-limit --db "$1" --store database --keys "$keys" --tasks "$tasks" --secs "$SECS")" \
                "$(floor rate-limit --db "$1" --store memory --keys "$keys" --tasks "$tasks" --secs "$SECS")"
        done

        local other same
        other=$(taskset -c "$LOAD_CPU" "$BENCH" wake-latency --push-url "$direct" --wait-url "$second")
        same=$(taskset -c "$LOAD_CPU" "$BENCH" wake-latency --push-url "$second" --wait-url "$second")
        add wake50 "$(in_unit "$(field p50_us "$other")" 0.001)" "$(in_unit "$(field p50_us "$same")" 0.001)"
        add wake99 "$(in_unit "$(field p99_us "$other")" 0.001)" "$(in_unit "$(field p99_us "$same")" 0.001)"
        info wake_max "$(in_unit "$(field max_us "$other")" 0.001)"
        info wake_early "$(field early "$other")"
        info wake_same_early "$(field early "$same")"

        local before rps
        declare -A fleet=()
        for n in 0 1 2 3; do
            local url=http://127.0.0.1:$((18093 + n))
            [ "$n" = 0 ] && url=$direct
            before=$(cpu_mark)
            rps=$(BENCH_PATH=/v1/auth/me BENCH_TOKENS=$tokens wrk_run rps 32 get.lua "$url")
            cpu_info "fleet$n" "$before" "$(cpu_mark)"
            fleet[$n]=$rps
        done
        add fleet1 "${fleet[1]}" "${fleet[0]}"
        add fleet2 "${fleet[2]}" "${fleet[1]}"
        add fleet3 "${fleet[3]}" "${fleet[1]}"
    done
    # Requests each instance was given by the three-instance frontend (roundrobin).
    FLEET_SPLIT=$(hap_stats | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; next}
        $1 == "fleet3" && $2 ~ /^i/ {printf "%s%s", sep, $c["lbtot"]; sep = " / "}') || true
    # Connections the three pools (at most 16 each, a listener's included) keep open after the runs.
    FLEET_CONNS=$(psql -Atq "$1" -c "SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()")
    local hits lookups
    FLEET_HITS=0 FLEET_LOOKUPS=0
    for i in 1 2 3; do
        read -r hits lookups <<<"$(cache_hits "http://127.0.0.1:$((18090 + i))")"
        FLEET_HITS=$((FLEET_HITS + hits)) FLEET_LOOKUPS=$((FLEET_LOOKUPS + lookups))
    done
    stop_instances
}

# --- the table --------------------------------------------------------------------------------
row() { # KEY LABEL UNIT TARGET(>=x or <=x, or - for information)
    [ -n "${A[$1]:-}" ] || return 0
    local a b
    a=$(median <<<"${A[$1]}")
    b=$(median <<<"${B[$1]}")
    awk -v l="$2" -v u="$3" -v t="$4" -v a="$a" -v b="$b" 'BEGIN {
        r = (b > 0) ? a / b : 0
        if (t == "-") {
            # Two significant digits for a ratio far below 1 (a store against memory).
            printf "| %s | %.1f %s | %.1f %s | " (r > 0 && r < 0.1 ? "%.2g" : "%.2f") " | - | - |\n", l, a, u, b, u, r
            exit
        }
        op = substr(t, 1, 2); x = substr(t, 3) + 0
        met = (op == ">=") ? (r >= x) : (r <= x)
        printf "| %s | %.1f %s | %.1f %s | %.2f | %s %s | %s |\n", l, a, u, b, u, r, op, x, met ? "yes" : "no"
    }'
}

sum() { tr ' ' '\n' | awk '{s += $1} END {print s + 0}'; }
pct() { awk -v a="$(sum <<<"$1")" -v b="$(sum <<<"$2")" 'BEGIN {printf "%.2f", (a + b) ? 100 * b / (a + b) : 0}'; }
overload_note() { # the 503 shares of the overload row, over all its rounds
    local signed_in=" none of them signed in" slowest
    slowest=$(tr ' ' '\n' <<<"${I[legit_ok_ms]}" | sort -g | tail -1)
    [ "$(sum <<<"${I[legit_ok]}")" = 0 ] ||
        signed_in=" $(sum <<<"${I[legit_ok]}") signed in (the slowest round's p99 of those: $slowest ms)"
    echo
    echo "Login flood of 256 connections, over all rounds: $(pct "${I[legit_ok]}" "${I[legit_503]}")% of the" \
        "$(($(sum <<<"${I[legit_ok]}") + $(sum <<<"${I[legit_503]}"))) legit logins answered \`503\`" \
        "(p99 per round:${I[legit_503_ms]} ms) and$signed_in;" \
        "$(pct "${I[flood_ok]}" "${I[flood_503]}")% of the flood's $(sum <<<"${I[flood_ok]}${I[flood_503]}")" \
        "logins answered \`503\`; it had $(median <<<"${I[flood_checks]}") passwords checked per second" \
        "(median; the legit client alone: $(median <<<"${I[quiet_logins]}") logins/s) and its slowest" \
        "answer per round took${I[flood_max_ms]} ms."
}

cache_note() { # HITS LOOKUPS
    awk -v h="$1" -v n="$2" 'BEGIN {printf "%.1f%% of %d lookups hit", n ? 100 * h / n : 0, n}'
}
per_check() { # KEY: µs per check (1e6 / the median of checks/s), the database store's and memory's
    awk -v a="$(median <<<"${A[$1]}")" -v b="$(median <<<"${B[$1]}")" \
        'BEGIN {printf "%.1f µs against %.2f µs", 1e6 / a, 1e6 / b}'
}
cpu_note() { # KEY: medians over the rounds
    echo "instances $(median <<<"${I[$1_inst]}"), HAProxy $(median <<<"${I[$1_hap]}")," \
        "PostgreSQL $(median <<<"${I[$1_pg]}") cores; CPU $SVC_CPU busy $(median <<<"${I[$1_svc]}")%," \
        "CPU $LOAD_CPU $(median <<<"${I[$1_load]}")%"
}
instances_note() {
    [ -n "${I[wake_early]:-}" ] || return 0
    local worst met=met
    worst=$(tr ' ' '\n' <<<"${A[wake99]}" | sort -g | tail -1)
    awk -v w="$worst" 'BEGIN {exit !(w < 100)}' || met="not met"
    echo
    echo "Several instances (three app-rows processes on one database, all on CPU $SVC_CPU; HAProxy" \
        "on CPU $LOAD_CPU with wrk). A login-limit check (1e6 / checks/s, medians) costs" \
        "$(per_check limit_distinct_1) in memory with one task and a new key each," \
        "$(per_check limit_distinct_4) with 4 tasks, $(per_check limit_hot_4) on one hot key with 4 tasks."
    echo
    echo "Long-poll wake-up through another instance, 200 tries a round: p99 per round${A[wake99]} ms," \
        "slowest answer per round${I[wake_max]} ms; the contract's 100 ms: $met. Pulls answered" \
        "before the push's answer (counted as 0 ms) per round:${I[wake_early]} through another" \
        "instance,${I[wake_same_early]} through the same one."
    echo
    echo "Session checks, c=32, CPU used during them (medians): directly, $(cpu_note fleet0);" \
        "through HAProxy to 1 instance, $(cpu_note fleet1); to 2, $(cpu_note fleet2); to 3," \
        "$(cpu_note fleet3). Requests given to each instance by the 3-instance frontend: $FLEET_SPLIT." \
        "Session cache of the three: $(cache_note "$FLEET_HITS" "$FLEET_LOOKUPS"). They held" \
        "$FLEET_CONNS connections to the database after the runs."
}

rss_row() { # a row of its own: MiB above idle against the bound, not a ratio
    [ -n "${I[rss_above]:-}" ] || return 0
    local above
    above=$(median <<<"${I[rss_above]}")
    awk -v a="$above" -v i="$(median <<<"${I[rss_idle]}")" 'BEGIN {
        printf "| peak RSS above idle under 32 concurrent 16 MiB uploads (VmHWM after vs VmRSS idle before) | %.1f MiB | idle %.1f MiB | - | < 64 MiB | %s |\n",
            a, i, (a < 64) ? "yes" : "no"
    }'
}
rss_note() {
    [ -n "${I[rss_above]:-}" ] || return 0
    echo
    echo "32 concurrent uploads of 16 MiB (one account each, bodies from memory), per round: peak RSS" \
        "above idle${I[rss_above]} MiB (idle${I[rss_idle]} MiB, peak${I[rss_peak]} MiB); the slowest" \
        "upload took${I[rss_secs]} s. The warm-up round (the accounts' first saves, on a service" \
        "that had taken no upload of that size) went${I[rss_first]} MiB above its idle."
}
crossover_note() {
    [ -n "${A[cross16]:-}" ] || return 0
    local kib
    echo
    echo "Where files beat rows: PUT with If-Match through the service, one connection, MiB/s (medians)," \
        "one service with \`SAVE_FILE_THRESHOLD=0\` (files) beside one with \`off\` (rows), on CPU $SVC_CPU:"
    echo
    echo "| size | rows (\`off\`) | files (\`0\`) | files/rows |"
    echo "| --- | --- | --- | --- |"
    for kib in $CROSS_KIB; do
        awk -v k="$kib" -v f="$(median <<<"${A[cross$kib]}")" -v r="$(median <<<"${B[cross$kib]}")" 'BEGIN {
            printf "| %s | %.1f MiB/s (%.0f/s) | %.1f MiB/s (%.0f/s) | %.2f |\n",
                (k >= 1024) ? (k / 1024) " MiB" : k " KiB", r, r * 1024 / k, f, f * 1024 / k, (r > 0) ? f / r : 0
        }'
    done
}

report() { # TITLE
    {
        echo "#### $1"
        echo
        echo "| ratio | A (service) | B (floor) | A/B | target | met |"
        echo "| --- | --- | --- | --- | --- | --- |"
        row session "session check (\`GET /v1/auth/me\` vs \`GET /healthz\`, c=32)" "req/s" ">=0.6"
        row login "login (c=4 vs argon2id verifications, 4 threads)" "/s" ">=0.85"
        row starvation "no starvation (p99 of /me, c=4, with vs without a login flood)" "µs" "<=5"
        row overload "legit login under a 256-connection login flood (p99 of its answers, 200 or 503, c=1, with vs without the flood)" "ms" "<=10"
        row push100 "rows push, 100-row batches" "rows/s" ">=0.4"
        row push1000 "rows push, 1000-row batches" "rows/s" ">=0.4"
        row pull "rows pull, pages of 1000" "rows/s" ">=0.5"
        row put_file "blob put, 4 MiB with If-Match (vs write+fsync+rename+dir fsync of a file)" "MiB/s" ">=0.6"
        row put "blob put, 4 MiB with If-Match (vs the same INSERT in process; for information)" "MiB/s" "-"
        row disk "blob put, 4 MiB, against the disk (write+fsync+rename+dir fsync of a file; for information)" "MiB/s" "-"
        row get_file "blob get, 4 MiB (vs reading the same file)" "MiB/s" ">=0.8"
        row get "blob get, 4 MiB (vs the same SELECT)" "MiB/s" ">=0.5"
        row put64 "blob put, 64 KiB with If-Match, in the row (vs the same INSERT in process)" "MiB/s" ">=0.6"
        row get64 "blob get, 64 KiB, in the row (vs the same SELECT)" "MiB/s" ">=0.5"
        rss_row
        row limit_distinct_1 "login-limit checks in the database store, a new key each, 1 task (vs in memory)" "checks/s" "-"
        row limit_distinct_4 "login-limit checks in the database store, a new key each, 4 tasks (vs in memory)" "checks/s" "-"
        row limit_hot_4 "login-limit checks in the database store, one hot key, 4 tasks (vs in memory)" "checks/s" "-"
        row wake50 "long-poll woken by a push through another instance, p50 (vs through the same instance)" "ms" "-"
        row wake99 "long-poll woken by a push through another instance, p99 (vs through the same instance)" "ms" "-"
        row fleet1 "session check through HAProxy, 1 instance (vs the instance directly, c=32)" "req/s" "-"
        row fleet2 "session check through HAProxy, 2 instances (vs 1 instance through HAProxy)" "req/s" "-"
        row fleet3 "session check through HAProxy, 3 instances (vs 1 instance through HAProxy)" "req/s" "-"
        echo
        has rows && echo "Peak RSS of app-rows: idle $RSS_IDLE MiB, after the login floods $RSS_FLOOD MiB" \
            "(hashing permits: 1 on one core). Cold start to \`/readyz\` on the existing database: ${COLD} ms" \
            "(median of 5). Session cache (default settings): $(cache_note "$CACHE_HITS" "$CACHE_LOOKUPS")."
        has rows && overload_note
        rss_note
        instances_note
        crossover_note
        echo
    } | tee -a "$OUT"
}

{
    echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — $(cd "$ROOT" && git rev-parse --short HEAD)"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB;" \
        "service on CPU $SVC_CPU, wrk on CPU $LOAD_CPU; $ROUNDS rounds of ${SECS} s, medians."
    echo
} | tee "$OUT"

for backend in $BACKENDS; do
    A=() B=() I=()
    data=$(mktemp -d /tmp/bench-data.XXXXXX)
    case $backend in
    sqlite)
        mkdir -p "$data/rows" "$data/blob"
        has rows && bench_rows "sqlite://$data/rows/app-rows.db" "$data/rows"
        has blob && bench_blob "sqlite://$data/blob/app-blob.db" "$data/blob"
        has blob-crossover && bench_crossover "$data/crossover"
        has instances && log "several instances: PostgreSQL only, skipped on SQLite"
        report "SQLite (synchronous=FULL, WAL)"
        ;;
    postgres)
        if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
            log "PostgreSQL does not answer: skipped"; continue
        fi
        name=bench_$(date +%s)_$$
        psql -q "$PG/postgres" -c "CREATE DATABASE ${name}_rows" -c "CREATE DATABASE ${name}_blob" \
            -c "CREATE DATABASE ${name}_instances"
        mkdir -p "$data/rows" "$data/blob" "$data/instances"
        has rows && bench_rows "$PG/${name}_rows" "$data/rows"
        has blob && bench_blob "$PG/${name}_blob" "$data/blob"
        has instances && bench_instances "$PG/${name}_instances" "$data/instances"
        psql -q "$PG/postgres" -c "DROP DATABASE ${name}_rows" -c "DROP DATABASE ${name}_blob" \
            -c "DROP DATABASE ${name}_instances"
        report "PostgreSQL"
        ;;
    esac
    rm -rf "$data"
done

if [ "${BENCH_RECORD:-0}" = 1 ]; then
    awk -v f="$OUT" '{print} /^<!-- runs, newest first -->$/ {print ""; while ((getline l < f) > 0) print l}' \
        "$ROOT/BENCHMARKS.md" >"$OUT.all" && mv "$OUT.all" "$ROOT/BENCHMARKS.md"
    log "recorded in BENCHMARKS.md"
fi
log "result: $OUT"
