-- POST /v1/embeddings with one small image per request; the JSON body is prepared by server_load.sh
-- (path in VLM_WRK_BODY) so the image bytes are real JPEG/PNG data.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
require("report")

local path = os.getenv("VLM_WRK_BODY")
local f = assert(io.open(path, "rb"), "cannot open VLM_WRK_BODY=" .. tostring(path))
wrk.method = "POST"
wrk.path = "/v1/embeddings"
wrk.headers["Content-Type"] = "application/json"
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests) report(summary, latency) end
