-- Shared by the wrk scripts: one summary line that bench/run.sh reads.
function bench_done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH rps=%.3f p99_us=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end

function bench_lines(path)
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  return lines
end
