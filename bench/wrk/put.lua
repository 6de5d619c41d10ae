-- PUT /v1/save of BENCH_KIB KiB (or BENCH_MIB MiB) with If-Match: the ETag of the previous answer
-- (one connection). The bodies cycle through BENCH_VARIANTS different ones (default 16, more than
-- the history keeps), so that each PUT stores bytes the account does not hold already.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local token = os.getenv("BENCH_TOKEN")
local etag = os.getenv("BENCH_ETAG")
local size = os.getenv("BENCH_KIB") and tonumber(os.getenv("BENCH_KIB")) * 1024
  or tonumber(os.getenv("BENCH_MIB")) * 1048576
local variants = tonumber(os.getenv("BENCH_VARIANTS") or "16")
local bodies = {}
local seed = os.time()
for i = 1, variants do
  local tag = string.format("%016x", seed * 64 + i)
  bodies[i] = tag .. string.rep("x", size - #tag)
end
local n = 0

request = function()
  n = n + 1
  return wrk.format("PUT", "/v1/save", {["Authorization"] = "Bearer " .. token,
    ["If-Match"] = etag, ["Content-Type"] = "application/octet-stream"}, bodies[(n % variants) + 1])
end

response = function(status, headers, body)
  local next_etag = headers["etag"] or headers["ETag"]
  if next_etag then
    etag = next_etag
  end
end

done = bench_done
