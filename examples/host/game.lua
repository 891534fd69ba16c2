-- examples/host/game.lua -- the script that examples/host/game.c runs in a
-- sandboxed rlaif state: each tick it decides what every NPC says by asking
-- the AI preference labeler which of two candidate lines fits the situation.
--
-- The host sets the global `config` ({api, base_url, model}) before running
-- this file, calls game.init() once and game.tick(world) every frame, where
-- world = {tick, situation, bug, npcs = {{name, lines = {a, b}}, ...}}.
-- game.tick returns {tick, said = {{name, says, p}, ...}}: p is the labeler's
-- probability that the first line is the better one (both orders averaged),
-- as text with three decimals.
--
-- The sandbox: no io or os.execute here, files only inside this directory
-- (the tokenizer below), and every tick runs under the host's instruction
-- budget -- which is what stops the deliberate bug at `world.bug`.

game = {}   -- the host calls game.init and game.tick by these names

local labeler

function game.init()
  local client
  if config.api == "local" then
    -- offline: a tiny random Llama answers from its own logits, with the
    -- tokenizer shipped beside this script. It cannot read, so it only has a
    -- position bias, which scoring both orders cancels: p comes out 0.5 and
    -- the NPC keeps its first line. Point config at a real model to judge.
    local tok = assert(rlaif.tokenizer.load("tokenizer.json"))
    local model = rlaif.model.new { arch = "llama", vocab_size = tok:vocab_size(), n_layer = 1, n_head = 2,
      d_model = 32, d_ff = 64, max_seq = 4096, seed = 7, tie_embeddings = false }
    model:param("lm_head.weight"):mul_(40)   -- sharper next-token distributions: clearer preferences
    client = rlaif.llm.client { api = "local", model = model, tokenizer = tok }
  else
    -- a frame cannot wait for retries: fail fast, the NPC keeps its first line
    client = rlaif.llm.client { api = config.api, base_url = config.base_url, model = config.model,
      max_retries = 0, timeout = 2, connect_timeout = 1 }
  end
  -- "helpful-base" is one of the toolkit's own prompt templates (read-only to scripts);
  -- all 1000 alternatives from the tiny model, so "1" and "2" are always among them
  labeler = rlaif.labeler.new { client = client, template = "helpful-base",
    logprobs = config.api == "local" and 1000 or 5 }
  return { template = "helpful-base", api = config.api }
end

-- Which of an NPC's two lines is the more helpful answer to the situation?
local function choose(npc, situation)
  local rec = labeler:label_one { id = npc.name, context = situation, a = npc.lines[1], b = npc.lines[2] }
  if rec.status ~= "ok" then
    return { name = npc.name, says = npc.lines[1], why = rec.reason }   -- keep the game going
  end
  local best = rec.p >= 0.5 and 1 or 2
  return { name = npc.name, says = npc.lines[best], p = string.format("%.3f", rec.p) }
end

function game.tick(world)
  if world.bug then
    -- a modder's bug: waits for a flag nothing will ever set. The host's
    -- instruction budget ends this tick with an error; the next tick is fine.
    local npc = world.npcs[1]
    while not npc.ready do end
  end
  local said = {}
  for i, npc in ipairs(world.npcs) do said[i] = choose(npc, world.situation) end
  return { tick = world.tick, said = said }
end
