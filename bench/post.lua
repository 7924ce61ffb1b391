-- wrk script for bench/run: POST $BENCH_BODY (JSON) to the URL's path and
-- print one machine-readable line at the end (latencies in microseconds).
-- No response() callback: it would run Lua on every answer and take CPU
-- from the proxies on a small machine; wrk counts statuses > 399 itself.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
-- A client key (bench/accounting: a named key, so its limits and usage are on the path).
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then wrk.headers["x-goog-api-key"] = key end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f err_status=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
