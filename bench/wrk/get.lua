-- GET BENCH_PATH, with a bearer token drawn at random from BENCH_TOKENS (a file, one a line)
-- when set, and with `since=` cycling through BENCH_CURSORS (a file) when set.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local path = os.getenv("BENCH_PATH")
local tokens = os.getenv("BENCH_TOKENS") and bench_lines(os.getenv("BENCH_TOKENS"))
local cursors = os.getenv("BENCH_CURSORS") and bench_lines(os.getenv("BENCH_CURSORS"))
local n = 0
math.randomseed(os.time())

request = function()
  local headers = {}
  if tokens then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  end
  local p = path
  if cursors then
    n = n + 1
    p = p .. cursors[(n % #cursors) + 1]
  end
  return wrk.format("GET", p, headers)
end

done = bench_done
