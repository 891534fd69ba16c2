-- tests/spec/support/fake_client.lua -- `rlaif label --client` file: returns a
-- fake client (support/fake_llm.lua) with FAKE_DELAY seconds of CPU per request.
local fake = dofile("tests/spec/support/fake_llm.lua")
return fake.new { delay = tonumber(os.getenv("FAKE_DELAY") or "0"), bias = 0.4 }
