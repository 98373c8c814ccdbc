#!/usr/bin/env bash
# Benchmark (by hand, not CI): how fast is prefsync as an HTTP client, against a server so
# cheap that the client is what is measured (see bench/README.md for the scenarios, what
# each row measures and the targets it is compared with).
#
#   bench/compare_push.sh [ROWS [LAT_ROWS [RATE_ROWS [PULL_ROWS [BIG_ROWS]]]]]
#       ROWS       push at 0 ms, pinned and unpinned            default 50,000
#       LAT_ROWS   push at 50 ms with C=512 (C=64 gets 1/8)      default 50,000
#       RATE_ROWS  push against nginx limit_req 300 r/s          default 10,000
#       PULL_ROWS  pull (GET by alternate id)                     default 20,000
#       BIG_ROWS   one large push: first request, journal, RSS   default 100,000
#   environment: REPS (3), CONNECTIONS (64), SCENARIOS ("push latency rate pull big"),
#                LIMIT_BURST (30: the rate scenario's nginx burst),
#                PRIORITY (-10: the autogroup nice value of clients and server, see
#                bench/compare/measure.c; 0 leaves priorities alone),
#                PREFSYNC_WRAP (a command prefix for prefsync, e.g. "perf record -g -o F --":
#                for a profile, not for figures; push and pull runs),
#                PREFSYNC_BIN (the prefsync binary; default build/prefsync: to compare builds),
#                CLIENTS ("wrk curl prefsync": the clients run in the push and latency
#                scenarios, e.g. "wrk prefsync" for an A/B of two builds, wrk kept as the
#                reference each round's ratio is taken against; the rate, pull and big
#                scenarios run theirs whatever it says),
#                ORDER ("generated": identities in ascending order, as the generator writes
#                them; "shuffled": the same rows in a fixed random order, as a source sorted
#                by anything but the identity gives them)
#
# The server is a private nginx (nginx-light) on 127.0.0.1, one worker, answering the
# API's upsert (W4) with 202 and a small JSON body, and its GET by alternate id with a
# distinct 2.4 KB profile per id; it logs only each connection's first request (and, in the
# rate scenario, every status). Its CPU per request is measured and printed: it must stay
# far below the client's. Everything the script starts is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-50000}
lat_rows=${2:-50000}
rate_rows=${3:-10000}
pull_rows=${4:-20000}
big_rows=${5:-100000}
reps=${REPS:-3}
priority=${PRIORITY:--10}
conns=${CONNECTIONS:-64}
scenarios=" ${SCENARIOS:-push latency rate pull big} "
clients=" ${CLIENTS:-wrk curl prefsync} "
for c in $clients; do
    case $c in wrk | curl | prefsync) ;; *) echo "CLIENTS: $c is not one of wrk, curl, prefsync" >&2; exit 2 ;; esac
done
order=${ORDER:-generated}
case $order in generated | shuffled) ;; *) echo "ORDER must be generated or shuffled" >&2; exit 2 ;; esac
token=bench-token
client_id=12345
limit_rate=300   # the rate scenario's server limit, requests/s
limit_burst=${LIMIT_BURST:-30}  # its nginx burst: why 30, see bench/README.md ("rate")
echo_module=/usr/lib/nginx/modules/ngx_http_echo_module.so

# --- prerequisites --------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
[ -e "$echo_module" ] || missing+=(libnginx-mod-http-echo)  # echo_sleep: the 50 ms latency
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
command -v cc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "needs: apt-get install ${missing[*]}" >&2; exit 1; }
    echo "installing ${missing[*]}" >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "needs 2 CPUs (client on CPU 0, server on CPU 1)" >&2; exit 1; }

"$root/scripts/build.sh" "$root/build" >/dev/null
prefsync=${PREFSYNC_BIN:-$root/build/prefsync}
user_agent=$("$prefsync" --version | awk '{print "prefsync/" $2}')

work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as nobody
ngx=$work/nginx
mkdir -p "$ngx/tmp" "$work/run"
ngx_pid=
stop_nginx() {
    [ -n "$ngx_pid" ] || return 0
    kill "$ngx_pid" 2>/dev/null || true
    wait "$ngx_pid" 2>/dev/null || true
    ngx_pid=
}
# A second journal directory on tmpfs, where fsync costs nothing: the push runs once more
# with its journal there, to tell the journal's syncs from the rest of the client's time.
shm=$(mktemp -d -p /dev/shm prefsync-bench.XXXXXX)
trap 'stop_nginx; rm -rf "$work" "$shm"' EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$work/measure" "$root/bench/compare/measure.c"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
write_path=/Profiles/v2/$client_id/Profile/AlternateId
write_prefix="$base$write_path?alternateIdType=CRMID&alternateId="

results=$work/results.tsv
configs=$work/configs.tsv
: > "$results"
: > "$configs"

# --- the server -----------------------------------------------------------------------
# The API's answer to an upsert: 202, queued. ProfileId follows the id (C00000042 → 42).
accepted_body='{"AlternateId":"$arg_alternateId","AlternateIdType":"CRMID","ProfileId":$profile_id,"UpdateStatus":"Pending Update","SubmittedUtcTime":"2026-11-28T02:00:07Z"}'
# A profile as R1 returns it, 2.4 KB, distinct per id: the id and ProfileId substituted.
profile_body=$(tr -d '\n' <<'JSON'
{"ProfileId":$profile_id,"IsActive":true,"UpdateStatus":"Complete","RegistrationConfirmed":true,"CustomerType":"Retail",
"DefaultLocale":"de_DE","PreserveConsents":true,"PreservePreferences":true,"CustomerName":{"FirstName":"Zoë","MiddleName":"",
"LastName":"Müller","Prefix":"","Suffix":""},"AlternateIds":[{"AlternateIdType":"CRMID","AlternateId":"$arg_alternateId",
"IsActive":true,"AlternateIdTypeLink":""}],"Emails":[{"EmailAddress":"zoe.mueller.$arg_alternateId@example.com",
"EmailAddressType":"Personal","IsDefault":true,"IsActive":true,"EmailPreferences":[{"ProgramId":"NEWSLETTER","ChannelId":"EMAIL",
"PreferenceStatus":"OptIn","MatchType":"Expressed","LastModifiedDate":"2026-03-14T09:26:53Z"}],"Consents":[{"ConsentType":
"EmailMarketing","ConsentVersion":"1","Locale":"de_DE","ConsentStatus":1,"ConsentDate":"2026-03-14T09:26:53Z","Expired":false,
"IsActive":true}]},{"EmailAddress":"zoe@corp42.example.com","EmailAddressType":"Work","IsDefault":false,"IsActive":true,
"EmailPreferences":[],"Consents":[]}],"PhoneNumbers":[{"PhoneNumber":"4045550100","PhoneType":"Mobile","PhoneNumberNumeric":
4045550100,"IsMobile":true,"IsDefault":true,"IsActive":true,"PhonePreferences":[{"ProgramId":"SMS-ALERTS","ChannelId":"SMS",
"PreferenceStatus":"OptIn","MatchType":"Expressed","LastModifiedDate":"2026-03-14T09:26:53Z"}],"Consents":[]},{"PhoneNumber":
"4045550199","PhoneType":"Home","PhoneNumberNumeric":4045550199,"IsMobile":false,"IsDefault":false,"IsActive":true,
"PhonePreferences":[],"Consents":[]}],"Addresses":[{"AddressType":"Home","Address1":"12 Königstraße","Address2":"Apt 3, Floor 2",
"City":"München","StateProvince":"BY","PostalCode":"80331","Country":"Germany","CountryCode_Alpha2":"DE","CountryCode_Alpha3":
"DEU","CountryCode_Numeric":"276","IsDefault":true,"IsActive":true,"AddressPreferences":[],"Consents":[]}],"ProfileTags":[{"Name":
"vip"},{"Name":"newsletter"},{"Name":"early-adopter"}],"CustomFields":[{"Name":"LoyaltyTier","Value":"Gold","IsActive":true},
{"Name":"SignupDate","Value":"2021-07-19","IsActive":true}],"ProfilePreferences":[{"ProgramId":"NEWSLETTER","ChannelId":"EMAIL",
"PreferenceStatus":"OptIn","PreferenceType":"Explicit","MatchType":"Expressed","SourceId":"CRM","LastModifiedDate":
"2026-03-14T09:26:53Z","PreferenceAttributes":[{"Key":"Frequency","Value":"Weekly"}]}],"Consents":[],"Edited":{"CreateDate":
"2026-03-14T09:26:53Z","CreatedBy":"prefsync","ModifiedDate":"2026-11-28T02:00:07Z","ModifiedBy":"prefsync"}}
JSON
)

# nginx_conf MODE [LATENCY_MS]: push (202 at once), latency (202 after LATENCY_MS),
# rate (202 under limit_req, else 429 + Retry-After), pull (200 + profile).
nginx_conf() {
    local mode=$1 latency_ms=${2:-0} answer extra_http= extra_server=
    case $mode in
        push) answer="return 202 '$accepted_body';" ;;
        latency)
            # nginx cannot wait by itself; the echo module's echo_sleep is a timer in the
            # worker's event loop: no second process, no thread, ~1 ms accurate.
            answer="echo_status 202; echo_sleep $(awk -v m="$latency_ms" 'BEGIN{printf "%.3f", m/1000}'); echo -n '$accepted_body';" ;;
        rate)
            # The answer comes from echo, a content handler: `return` acts in the rewrite
            # phase, before limit_req is consulted, and would never be limited.
            answer="limit_req zone=api burst=$limit_burst nodelay; limit_req_status 429; error_page 429 = @limited;
            echo_status 202; echo -n '$accepted_body';"
            extra_http="limit_req_zone \$server_port zone=api:1m rate=${limit_rate}r/s;
    log_format status '\$msec \$status';"
            # Every answer's status, in this scenario only: nginx's own count of the 429s.
            extra_server="access_log $ngx/status.log status;
        location @limited { add_header Retry-After 1 always; return 429 '{\"Message\":\"Too many requests\"}'; }" ;;
        pull) answer="return 200 '$profile_body';" ;;
    esac
    cat <<CONF
$([ "$mode" = latency ] || [ "$mode" = rate ] && echo "load_module $echo_module;")
daemon off;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    default_type application/json;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    # The default (1000) would make every client reconnect every 1000 requests.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    map \$arg_alternateId \$profile_id { "~^C0*(?<n>[0-9]+)\$" \$n; default 0; }
    # One log line per connection, its first request: when the first request arrived, at
    # the cost of C lines per run.
    map \$connection_requests \$first_on_connection { 1 1; default 0; }
    log_format first '\$msec \$request_time';
    $extra_http
    server {
        listen 127.0.0.1:$port backlog=4096;
        access_log $ngx/first.log first if=\$first_on_connection;
        location = $write_path { $answer }
        location = /__bench_status { access_log off; stub_status; }
        $extra_server
    }
}
CONF
}

# start_nginx MODE [LATENCY_MS]: sets ngx_pid (the master) and ngx_worker.
start_nginx() {
    stop_nginx
    nginx_conf "$@" > "$ngx/nginx.conf"
    # In a session of its own with raised priority, as the clients (bench/compare/measure.c
    # says why): a server that answers late would be charged to the client.
    setsid nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" 2>> "$ngx/error.log" &
    ngx_pid=$!
    [ "$priority" = 0 ] || echo "$priority" > "/proc/$ngx_pid/autogroup" 2>/dev/null || true
    for _ in $(seq 100); do
        curl -sf "$base/__bench_status" >/dev/null 2>&1 && break
        sleep 0.05
    done
    curl -sf "$base/__bench_status" >/dev/null || { cat "$ngx/error.log" >&2; echo "nginx did not start" >&2; exit 1; }
    ngx_worker=$(cat "/proc/$ngx_pid/task/$ngx_pid/children")
    ngx_worker=${ngx_worker%% *}
}

# pin MODE: pinned = server worker on CPU 1 (the client is started on CPU 0); unpinned = anywhere.
pin() {
    if [ "$1" = pinned ]; then
        taskset -p -c 1 "$ngx_worker" >/dev/null
        client_pin=(taskset -c 0)
    else
        taskset -p -c "0-$((ncpu - 1))" "$ngx_worker" >/dev/null
        client_pin=()
    fi
}

server_counts() {  # prints "accepted_connections requests cpu_ns" of the worker
    local reqs
    reqs=$(curl -s "$base/__bench_status" | awk 'NR == 3 {print $1, $3}')
    echo "$reqs $(awk '{print $1}' "/proc/$ngx_worker/schedstat")"
}

# --- inputs ---------------------------------------------------------------------------
# prefsync_config CSV BURST [CONNECTIONS]: examples/prefsync.yaml pointed at nginx, the CSV
# and a run directory; rate and base URL come from the environment the example reads.
prefsync_config() {
    local csv=$1 burst=$2 c=${3:-$conns} out=$work/run/prefsync.yaml
    sed -e "s|connections: 16|connections: $c|" -e "s|burst: 50|burst: $burst|" -e "s|path: profiles.csv|path: $csv|" \
        "$root/examples/prefsync.yaml" > "$out"
    grep -q "connections: $c\$" "$out" && grep -q "burst: $burst\$" "$out" && grep -q "path: $csv\$" "$out" ||
        { echo "examples/prefsync.yaml changed: update prefsync_config in $0" >&2; exit 1; }
    cat >> "$out" <<YAML
  pull-bench:
    source: { type: csv, path: $csv }
    identity: { alternate_id_type: CRMID, column: customer_id }
    pull: {}
    sink: { type: jsonl, path: $work/run/out/profiles.jsonl }
YAML
}
export PREFSYNC_TOKEN=$token PREFSYNC_BASE_URL=$base/Profiles/v2
state=$work/run/state  # the journal's directory for the next run

# rows_dir N [csv-only]: the generated CSV of N rows and, from prefsync's own dry-run, the
# reference clients' inputs (one curl entry per row; wrk's body), made once per size.
rows_dir() {
    local n=$1 dir=$work/rows-$1-$order
    if [ ! -s "$dir/profiles.csv" ]; then
        mkdir -p "$dir"
        if [ "$order" = shuffled ]; then
            "$root/build/tools/prefsync-gen-profiles" "$n" | python3 -c '
import csv, random, sys
rows = list(csv.reader(sys.stdin))
body = rows[1:]
random.Random(13).shuffle(body)
csv.writer(sys.stdout, lineterminator="\n").writerows(rows[:1] + body)' > "$dir/profiles.csv"
        else
            "$root/build/tools/prefsync-gen-profiles" "$n" > "$dir/profiles.csv"
        fi
        touch -d "1 hour ago" "$dir/profiles.csv"  # settled: a run waits out a source written within source.settle
    fi
    if [ "${2:-}" != csv-only ] && [ ! -s "$dir/body.json" ]; then
        prefsync_config "$dir/profiles.csv" 50
        PREFSYNC_JOURNAL=$work/dry-run/journal.db "$prefsync" -c "$work/run/prefsync.yaml" dry-run crm-nightly |
            python3 "$root/bench/compare/bodies.py" "$write_prefix" "$token" "$user_agent" "$dir/curl.cfg" "$dir/body.json" >&2
    fi
    echo "$dir"
}

# --- one measured run -------------------------------------------------------------------
# run_client CONFIG CLIENT REP ROWS TIMEOUT_S COMMAND...: runs COMMAND (pinned as set by
# `pin`) and appends a line to results.tsv.
run_client() {
    local config=$1 client=$2 rep=$3 n=$4 timeout=$5
    shift 5
    rm -rf "$state" "$work/run/out"
    : > "$ngx/first.log"
    [ -e "$ngx/status.log" ] && : > "$ngx/status.log"
    local before after
    before=$(server_counts)
    (cd "$work/run" && "$work/measure" "$work/m.txt" "$timeout" "$priority" "${client_pin[@]}" "$@" \
        > "$work/run/client.out" 2> "$work/run/client.err") || true
    after=$(server_counts)
    local start wall user sys rss code
    read -r start wall user sys rss code < "$work/m.txt"
    local journal_bytes=0 first_ms=-1 n429=0 n202=0 span=0
    if [ -d "$state" ]; then
        journal_bytes=$(find "$state" -maxdepth 1 -name 'journal.db*' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    fi
    if [ -s "$ngx/first.log" ]; then
        first_ms=$(awk -v s="$start" 'NR == 1 || $1 - $2 < m {m = $1 - $2} END {printf "%.0f", (m - s) * 1000}' "$ngx/first.log")
    fi
    if [ -s "$ngx/status.log" ]; then
        read -r n202 n429 span < <(awk '$2 == 202 {a++; if (!f) f = $1; l = $1} $2 == 429 {r++}
            END {printf "%d %d %.3f\n", a, r, l - f}' "$ngx/status.log")
    fi
    local -a b a
    read -r -a b <<< "$before"
    read -r -a a <<< "$after"
    # The status request that read the counters counts itself, and its connection: one less.
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$client" "$rep" "$n" \
        "$wall" "$user" "$sys" "$rss" "$code" "$((a[2] - b[2]))" "$((a[1] - b[1] - 1))" "$((a[0] - b[0] - 1))" \
        "$first_ms" "$journal_bytes" "$n429" "$span" "$n202" >> "$results"
    if [ "$code" != 0 ]; then
        echo "    $client exited $code; its stderr ends:" >&2
        tail -3 "$work/run/client.err" | sed 's/^/      /' >&2
    fi
    # Against the limit, the rows delivered (202s) are what counts.
    local done_rows=$n
    [ -s "$ngx/status.log" ] && done_rows=$n202
    printf '    %-9s %s of %s rows in %6.2f s = %8.0f rows/s, CPU %6.1f µs/row\n' "$client" "$done_rows" "$n" "$wall" \
        "$(awk -v n="$done_rows" -v w="$wall" 'BEGIN {print n / w}')" \
        "$(awk -v n="$done_rows" -v u="$user" -v s="$sys" 'BEGIN {print (u + s) * 1e6 / (n > 0 ? n : 1)}')" >&2
}

config_line() {  # KEY TITLE LIMIT(requests/s or empty) LIMIT_LABEL
    printf '%s\t%s\t%s\t%s\n' "$@" >> "$configs"
}

run_wrk_post() {  # CONFIG REP ROWS DIR CONNECTIONS
    [[ $clients == *" wrk "* ]] || return 0
    BENCH_BODY_FILE=$4/body.json BENCH_ROWS=$3 BENCH_TOKEN=$token BENCH_USER_AGENT=$user_agent \
        run_client "$1" wrk "$2" "$3" $((60 + $3 / 500)) \
        wrk -t1 -c"$5" -d1h --timeout 30s -s "$root/bench/compare/post.lua" "${write_prefix}C00000001"
}
run_curl() {  # CONFIG REP ROWS DIR CONNECTIONS
    [[ $clients == *" curl "* ]] || return 0
    run_client "$1" curl "$2" "$3" $((60 + $3 / 200)) \
        curl --parallel --parallel-immediate --parallel-max "$5" -sS --no-progress-meter -K "$4/curl.cfg"
}
run_prefsync_push() {  # CONFIG REP ROWS DIR CONNECTIONS RATE BURST [CLIENT_NAME]
    [[ $1 != push-* && $1 != latency-* ]] || [[ $clients == *" prefsync "* ]] || return 0
    prefsync_config "$4/profiles.csv" "$7" "$5"
    PREFSYNC_RATE=$6 PREFSYNC_JOURNAL=$state/journal.db run_client "$1" "${8:-prefsync}" "$2" "$3" "${cap:-$((120 + $3 / 100))}" \
        ${PREFSYNC_WRAP:-} "$prefsync" -c "$work/run/prefsync.yaml" backfill crm-nightly
}

echo "compare_push: $ncpu CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); nginx $(nginx -v 2>&1 | sed 's|.*/||'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'), $(curl --version | head -1 | awk '{print "curl " $2}'), $("$prefsync" --version)" >&2
started=$(date +%s)

# --- 1. push, 0 ms: the client's own ceiling ---------------------------------------------
if [[ $scenarios == *" push "* ]]; then
    dir=$(rows_dir "$rows")
    start_nginx push
    for mode in pinned unpinned; do
        key=push-$mode
        if [ $mode = pinned ]; then where="pinned: client on CPU 0, server on CPU 1"; else where="unpinned"; fi
        config_line "$key" "push, 0 ms, C=$conns, $rows rows, $where" "" ""
        pin $mode
        for rep in $(seq "$reps"); do
            echo "push 0 ms $mode, round $rep/$reps" >&2
            run_wrk_post "$key" "$rep" "$rows" "$dir" "$conns"
            run_curl "$key" "$rep" "$rows" "$dir" "$conns"
            run_prefsync_push "$key" "$rep" "$rows" "$dir" "$conns" 1000000 1000
            state=$shm/state
            run_prefsync_push "$key" "$rep" "$rows" "$dir" "$conns" 1000000 1000 "prefsync, tmpfs journal"
            state=$work/run/state
        done
    done
fi

# --- 2. push, 50 ms: does it keep C requests in flight? ----------------------------------
if [[ $scenarios == *" latency "* ]]; then
    start_nginx latency 50
    pin pinned
    # What a client sees of the 50 ms: 20 sequential requests on one connection.
    probe=$(curl -s -X POST --data-binary '{}' -w '%{time_total}\n' $(for _ in $(seq 20); do echo "-o /dev/null ${write_prefix}C1"; done) |
        sort -n | awk '{v[NR] = $1} END {printf "median %.1f ms, max %.1f ms", v[int((NR + 1) / 2)] * 1000, v[NR] * 1000}')
    echo "latency probe (20 sequential requests): $probe" >&2
    for c in 64 512; do
        n=$((c == 512 ? lat_rows : lat_rows / 8))
        dir=$(rows_dir "$n")
        key=latency-$c
        config_line "$key" "push, 50 ms (server: $probe), C=$c, $n rows, pinned" "$((c * 20))" "C÷RTT"
        for rep in $(seq "$reps"); do
            echo "push 50 ms C=$c, round $rep/$reps" >&2
            run_wrk_post "$key" "$rep" "$n" "$dir" "$c"
            run_curl "$key" "$rep" "$n" "$dir" "$c"
            run_prefsync_push "$key" "$rep" "$n" "$dir" "$c" 1000000 1000
        done
    done
fi

# --- 3. rate: a server that enforces 300 requests/s -------------------------------------
if [[ $scenarios == *" rate "* ]]; then
    dir=$(rows_dir "$rate_rows" csv-only)
    start_nginx rate
    pin pinned
    : > "$ngx/status.log"
    # A client that paces badly could take many times the ideal 1/300 s per row: each run is
    # stopped (SIGTERM: prefsync drains and exits 4) at 1.2 times the ideal time + 5 s (a
    # client meeting the 0.9 target finishes before), and what counts is the rows delivered
    # (202s) per second of the run.
    cap=$((rate_rows * 6 / 5 / limit_rate + 5))
    config_line rate "push against limit_req ${limit_rate} r/s (burst $limit_burst nodelay, 429 + Retry-After: 1), $rate_rows rows, pinned, each run stopped after $cap s" "$limit_rate" "of ${limit_rate}/s"
    for rep in $(seq "$reps"); do
        echo "rate limit $limit_rate/s, round $rep/$reps" >&2
        run_prefsync_push rate "$rep" "$rate_rows" "$dir" "$conns" 400 50 "prefsync 400/s burst 50"
        run_prefsync_push rate "$rep" "$rate_rows" "$dir" "$conns" "$limit_rate" 1 "prefsync ${limit_rate}/s burst 1"
    done
    cap=
fi

# --- 4. pull: GET by alternate id --------------------------------------------------------
if [[ $scenarios == *" pull "* ]]; then
    dir=$(rows_dir "$pull_rows" csv-only)
    start_nginx pull
    pin pinned
    config_line pull "pull (GET by alternate id, 2.4 KB profiles), 0 ms, C=$conns, $pull_rows rows, pinned" "" ""
    for rep in $(seq "$reps"); do
        echo "pull, round $rep/$reps" >&2
        BENCH_PATH_PREFIX="$write_path?alternateIdType=CRMID&alternateId=" BENCH_ROWS=$pull_rows BENCH_TOKEN=$token \
            BENCH_USER_AGENT=$user_agent run_client pull wrk "$rep" "$pull_rows" $((60 + pull_rows / 500)) \
            wrk -t1 -c"$conns" -d1h --timeout 30s -s "$root/bench/compare/get.lua" "$base"
        prefsync_config "$dir/profiles.csv" 1000
        PREFSYNC_RATE=1000000 PREFSYNC_JOURNAL=$state/journal.db run_client pull prefsync "$rep" "$pull_rows" $((120 + pull_rows / 100)) \
            ${PREFSYNC_WRAP:-} "$prefsync" -c "$work/run/prefsync.yaml" pull pull-bench
        got=$(cat "$work/run/out/profiles.jsonl" 2>/dev/null | wc -l)
        [ "$got" = "$pull_rows" ] || echo "    prefsync pull wrote $got profiles, not $pull_rows" >&2
    done
fi

# --- 5. big: one large push: first request, journal size, peak RSS ----------------------
if [[ $scenarios == *" big "* ]]; then
    dir=$(rows_dir "$big_rows" csv-only)
    start_nginx push
    pin pinned
    config_line big "push, 0 ms, C=$conns, $big_rows rows, pinned, one run" "" ""
    echo "big push, $big_rows rows" >&2
    run_prefsync_push big 1 "$big_rows" "$dir" "$conns" 1000000 1000
fi
stop_nginx

echo "compare_push: done in $(($(date +%s) - started)) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$root/bench/compare/report.py" "$configs" "$results" "$big_rows"
