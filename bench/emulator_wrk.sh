#!/usr/bin/env bash
# Benchmark (by hand, not CI): the emulator under wrk on loopback.
#   bench/emulator_wrk.sh [SECONDS] [CONNECTIONS]     defaults 10 s, 64 connections
# Measures a 2 KB upsert (POST by alternate id, new and existing ids) and a GET by
# alternate id, reporting req/s and the emulator's CPU time per request.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
. "$root/bench/lib.sh"
bench_setup
start_emulator "$work" --threads "${EMU_THREADS:-1}"

# A 2 KB profile body; each request upserts one of 100,000 alternate ids.
cat > "$work/upsert.lua" <<'LUA'
local body = '{"CustomerName":{"FirstName":"Zoë","LastName":"Müller"},"CustomerType":"Retail","DefaultLocale":"de_DE",' ..
  '"Emails":[{"EmailAddress":"zoe.mueller@example.com","EmailAddressType":"Personal","IsDefault":true}],' ..
  '"PhoneNumbers":[{"PhoneNumber":"4045550100","PhoneType":"Mobile","IsMobile":true}],' ..
  '"Addresses":[{"Address1":"1 Königstraße","City":"München","StateProvince":"BY","PostalCode":"80331","CountryCode_Alpha2":"DE","AddressType":"Home"}],' ..
  '"ProfileTags":[{"Name":"vip"},{"Name":"newsletter"}],"CustomFields":[{"Name":"LoyaltyTier","Value":"Gold"},{"Name":"Notes","Value":"' ..
  string.rep("x", 1200) .. '"}],"ProfilePreferences":[{"ProgramId":"NEWSLETTER","ChannelId":"EMAIL","PreferenceStatus":"OptIn"}]}'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRMID&alternateId=C" .. (n % 100000),
    {["Authorization"] = "emulator-token", ["Content-Type"] = "application/json"}, body)
end
LUA
cat > "$work/get.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRMID&alternateId=C" .. (n % 100000),
    {["Authorization"] = "emulator-token"})
end
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$emu_pid/stat"; }
run() {
  local name=$1 script=$2
  local before after
  before=$(cpu_ticks)
  wrk -t2 -c"$conns" -d"${secs}s" -s "$script" "http://$addr" > "$work/$name.txt"
  after=$(cpu_ticks)
  local rps reqs
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
  reqs=$(awk '/requests in/ {print $1}' "$work/$name.txt")
  local cpu_s
  cpu_s=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN{print t/hz}')
  echo "$name: $rps req/s, emulator CPU ${cpu_s}s for $reqs requests = $(awk -v c="$cpu_s" -v r="$reqs" 'BEGIN{printf "%.1f", c*1e6/r}') µs/request"
  grep -E "Latency|Non-2xx" "$work/$name.txt" | sed 's/^/    /'
}
run upsert-2KB "$work/upsert.lua"
run get "$work/get.lua"
