-- PUT /v1/save of BENCH_MIB MiB with If-Match: the ETag of the previous answer (one connection).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local token = os.getenv("BENCH_TOKEN")
local etag = os.getenv("BENCH_ETAG")
local body = string.rep("x", tonumber(os.getenv("BENCH_MIB")) * 1048576)

request = function()
  return wrk.format("PUT", "/v1/save", {["Authorization"] = "Bearer " .. token,
    ["If-Match"] = etag, ["Content-Type"] = "application/octet-stream"}, body)
end

response = function(status, headers, body)
  local next_etag = headers["etag"] or headers["ETag"]
  if next_etag then
    etag = next_etag
  end
end

done = bench_done
