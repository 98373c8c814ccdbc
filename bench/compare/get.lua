-- wrk: the reference client for the pull. GETs profile by alternate id, cycling through
-- C00000001 .. C<BENCH_ROWS> (the ids of the generated CSV, as prefsync pull reads them),
-- with prefsync's headers, and exits after BENCH_ROWS answers.
local prefix = os.getenv("BENCH_PATH_PREFIX")
local rows = tonumber(os.getenv("BENCH_ROWS"))
local headers = {
  ["Authorization"] = os.getenv("BENCH_TOKEN"),
  ["Accept"] = "application/json",
  ["User-Agent"] = os.getenv("BENCH_USER_AGENT"),
}
local next_id, answers, unexpected = 0, 0, 0

function request()
  next_id = next_id % rows + 1
  return wrk.format("GET", prefix .. string.format("C%08d", next_id), headers)
end

function response(status)
  answers = answers + 1
  if status ~= 200 then unexpected = unexpected + 1 end
  if answers >= rows then
    if unexpected > 0 then io.stderr:write(unexpected, " answers were not 200\n") end
    os.exit(unexpected == 0 and 0 or 1)
  end
end
