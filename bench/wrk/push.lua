-- POST /v1/rows/push of BENCH_BATCH rows of about 100 bytes, ids r0.., each request with a
-- greater version than the last, so that every row is applied (use one connection).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local token = os.getenv("BENCH_TOKEN")
local batch = tonumber(os.getenv("BENCH_BATCH"))
local ts = os.time() * 1000
local data = '{"t":"the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy"}'
local counter = 0

request = function()
  counter = counter + 1
  local rows = {}
  for i = 0, batch - 1 do
    rows[#rows + 1] = '{"collection":"notes","id":"r' .. i .. '","ts":' .. ts .. ',"counter":' ..
      counter .. ',"node":"bench","deleted":false,"data":' .. data .. '}'
  end
  local body = '{"changes":[' .. table.concat(rows, ",") .. ']}'
  return wrk.format("POST", "/v1/rows/push",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

done = bench_done
