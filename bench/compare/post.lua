-- wrk: the reference client for the push. POSTs one fixed body (BENCH_BODY_FILE: a body
-- prefsync sends, of median size) with prefsync's headers, and exits after BENCH_ROWS
-- answers, so that wrk does exactly as many requests as the other clients have rows.
-- The response() hook costs wrk a little (it hands every answer to Lua); without it wrk
-- could not stop at a count.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = os.getenv("BENCH_USER_AGENT")

local rows = tonumber(os.getenv("BENCH_ROWS"))
local expected = tonumber(os.getenv("BENCH_STATUS") or "202")
local answers, unexpected = 0, 0

function response(status)
  answers = answers + 1
  if status ~= expected then unexpected = unexpected + 1 end
  if answers >= rows then
    if unexpected > 0 then io.stderr:write(unexpected, " answers were not ", expected, "\n") end
    os.exit(unexpected == 0 and 0 or 1)
  end
end
