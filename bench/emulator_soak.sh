#!/usr/bin/env bash
# Soak (by hand, not CI): the emulator under a mixed load with faults for a while.
#   bench/emulator_soak.sh [SECONDS]          default 600 (10 minutes)
# Load: wrk, 32 connections: 60% upserts over 2,000 ids (so every profile soon has its full bounded history and memory must level off), 25% GETs, 10% email searches,
# 5% deletes; faults: 2% 503, 1% resets, 1% ambiguous writes, 0-5 ms latency jitter.
# Samples the emulator's RSS and open file descriptors every 30 s (they must stay flat),
# then checks the final state is consistent (no alternate id on two profiles, counters add up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
. "$root/bench/lib.sh"
bench_setup
start_emulator "$work" --processing-delay 200ms
curl -s -X POST "http://$addr/__admin/faults" -d '{"error_503":0.02,"reset":0.01,"ambiguous":0.01,"jitter_ms":5,"seed":7}' >/dev/null

cat > "$work/mixed.lua" <<'LUA'
local n = 0
local hdr = {["Authorization"] = "emulator-token", ["Content-Type"] = "application/json"}
local base = "/Profiles/v2/12345/Profile"
request = function()
  n = n + 1
  local id = (n * 7919) % 2000
  local r = n % 20
  if r < 12 then
    local body = '{"CustomerName":{"FirstName":"F' .. id .. '","LastName":"L' .. (id % 500) .. '"},' ..
      '"Emails":[{"EmailAddress":"c' .. id .. '@example.com"}],"CustomFields":[{"Name":"n","Value":"' .. n .. '"}]}'
    return wrk.format("POST", base .. "/AlternateId?alternateIdType=CRMID&alternateId=C" .. id, hdr, body)
  elseif r < 17 then
    return wrk.format("GET", base .. "/AlternateId?alternateIdType=CRMID&alternateId=C" .. id, hdr)
  elseif r < 19 then
    return wrk.format("GET", base .. "/Email?emailAddress=c" .. id .. "@example.com", hdr)
  else
    return wrk.format("GET", base .. "/History/CustomFields/AlternateId?alternateIdType=CRMID&alternateId=C" .. id, hdr)
  end
end
LUA

sample() {
  local rss fds
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$emu_pid/status")
  fds=$(ls "/proc/$emu_pid/fd" | wc -l)
  echo "t=${1}s rss=$((rss / 1024))MiB fds=$fds"
}
wrk -t2 -c32 -d"${secs}s" -s "$work/mixed.lua" "http://$addr" > "$work/wrk.txt" &
wrk_pid=$!
elapsed=0
while kill -0 $wrk_pid 2>/dev/null; do
  sample $elapsed
  sleep 30
  elapsed=$((elapsed + 30))
done
sample end
grep -E "Requests/sec|requests in|Socket errors|Non-2xx" "$work/wrk.txt"
curl -s "http://$addr/__admin/stats" > "$work/stats.json"
curl -s "http://$addr/__admin/state" > "$work/state.json"
python3 - "$work/stats.json" "$work/state.json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1])); state = json.load(open(sys.argv[2]))
profiles = state["profiles"]
seen = {}
for p in profiles:
    for a in p.get("AlternateIds", []):
        key = (a["AlternateIdType"], a["AlternateId"])
        assert key not in seen, f"alternate id {key} on two profiles"
        seen[key] = p["ProfileId"]
# Ambiguous writes are counted under status 0 (applied, never answered).
answered = sum(n for status, n in stats["by_status"].items() if status != "0")
faults = stats["faults"]
unanswered = faults.get("reset", 0) + faults.get("ambiguous", 0) + faults.get("outage", 0)
print(f"state: {len(profiles)} profiles, {len(seen)} alternate ids, none shared")
print(f"requests {stats['requests']} = answered {answered} + unanswered {unanswered}: "
      f"{'OK' if stats['requests'] == answered + unanswered else 'MISMATCH'}")
print("faults:", faults, "peak_rps:", stats["peak_rps"], "peak_connections:", stats["peak_connections"])
PY
