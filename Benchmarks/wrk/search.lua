-- POST /v1/search with one short text query per request (rotating prompts), top 10: text encoding through the
-- batcher, then the index search and the file lookups.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
require("report")

local prompts = {
  "a photo of a cat", "a dog playing in the snow", "an astronaut riding a horse",
  "a cup of coffee on a wooden table", "a red car parked on the street", "a mountain landscape at sunset",
  "two people walking on the beach", "a bowl of fruit",
}
local bodies = {}
for i, p in ipairs(prompts) do
  bodies[i] = '{"model":"' .. (os.getenv("VLM_MODEL_ID") or "") .. '","query":"' .. p .. '","top_k":10}'
end
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/search", { ["Content-Type"] = "application/json" }, bodies[(n % #bodies) + 1])
end

done = function(summary, latency, requests) report(summary, latency) end
