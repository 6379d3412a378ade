-- POST /v1/embeddings with one short text per request (rotating through a few prompts, as a search box would).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
require("report")

local prompts = {
  "a photo of a cat", "a dog playing in the snow", "an astronaut riding a horse",
  "a cup of coffee on a wooden table", "a red car parked on the street", "a mountain landscape at sunset",
  "two people walking on the beach", "a bowl of fruit",
}
local bodies = {}
for i, p in ipairs(prompts) do bodies[i] = '{"model":"' .. (os.getenv("VLM_MODEL_ID") or "") .. '","input":"' .. p .. '"}' end
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/embeddings", { ["Content-Type"] = "application/json" }, bodies[(n % #bodies) + 1])
end

done = function(summary, latency, requests) report(summary, latency) end
