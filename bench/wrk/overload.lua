-- POST /v1/auth/login with the body in BENCH_BODY (a file), counting `200`, `503` and other
-- answers apart. Run it with as many threads as connections (-tN -cN): each thread then has one
-- connection, whose requests and answers alternate, and times every request itself (wrk's own
-- latency distribution mixes the quick 503s with the logins).
--
-- BENCH_RETRY=1: a client that signs in for real and, as the contract asks of clients, waits the
-- answer's Retry-After (seconds) after a `503` before it tries again, and signs in again at once
-- after a `200`. Without BENCH_RETRY: a flood, which never waits.
--
-- Prints one line `BENCH ok=.. ok_rps=.. ok_p99_us=.. refused=.. refused_p99_us=.. refused_pct=..
-- answer_p99_us=.. max_us=.. errors=..`: ok counts the answers that checked the password (200;
-- for the flood also 401), refused the 503s, refused_pct their share of both, answer_p99_us is
-- the p99 of both together, max_us the slowest answer (wrk's own measure), and errors counts
-- socket errors, timeouts and any other answer. Latencies are kept for the retrying client only
-- (the flood's p99s print as 0).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local body = bench_lines(os.getenv("BENCH_BODY"))[1]
local retry = os.getenv("BENCH_RETRY") == "1"
local threads = {}

-- Per thread (each in its own Lua state).
ok, refused, other = 0, 0, 0
ok_us, refused_us = {}, {}
local started, wait_ms = 0, 0

setup = function(thread)
  threads[#threads + 1] = thread
end

delay = function()
  return wait_ms
end

request = function()
  started = now_us()
  return wrk.format("POST", "/v1/auth/login", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, _)
  local took = now_us() - started
  wait_ms = 0
  if status == 200 then
    ok = ok + 1
    if retry then ok_us[#ok_us + 1] = took end
  elseif status == 503 then
    refused = refused + 1
    if retry then
      refused_us[#refused_us + 1] = took
      wait_ms = 1000 * (tonumber(headers["Retry-After"] or headers["retry-after"] or "1") or 1)
    end
  elseif status == 401 and not retry then
    ok = ok + 1 -- the flood's wrong password, checked: its answer when it is not refused
  else
    other = other + 1
  end
end

local function p99(values)
  if #values == 0 then return 0 end
  table.sort(values)
  return values[math.max(1, math.ceil(#values * 0.99))]
end

done = function(summary, latency, _)
  local n_ok, n_refused, n_other, oks, refusals, answers = 0, 0, 0, {}, {}, {}
  for _, thread in ipairs(threads) do
    n_ok = n_ok + thread:get("ok")
    n_refused = n_refused + thread:get("refused")
    n_other = n_other + thread:get("other")
    for _, v in ipairs(thread:get("ok_us")) do oks[#oks + 1] = v; answers[#answers + 1] = v end
    for _, v in ipairs(thread:get("refused_us")) do refusals[#refusals + 1] = v; answers[#answers + 1] = v end
  end
  local e = summary.errors
  local answered = n_ok + n_refused
  io.write(string.format("BENCH ok=%d ok_rps=%.3f ok_p99_us=%d refused=%d refused_p99_us=%d " ..
    "refused_pct=%.2f answer_p99_us=%d max_us=%d errors=%d\n",
    n_ok, n_ok / (summary.duration / 1e6), p99(oks), n_refused, p99(refusals),
    answered > 0 and 100 * n_refused / answered or 0, p99(answers), latency.max,
    e.connect + e.read + e.write + e.timeout + n_other))
end
