-- POST /v1/auth/login with the body in BENCH_BODY (a file).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local body = bench_lines(os.getenv("BENCH_BODY"))[1]
wrk.method = "POST"
wrk.path = "/v1/auth/login"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
done = bench_done
