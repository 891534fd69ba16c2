-- Specs for rlaif.prompts: the sectioned template format, slots, assembly of the
-- paper's four parts, and chat rendering from the same source.
local prompts = require "rlaif.prompts"

local seed_base = "You are an expert summary rater. Given a piece of text and two of its possible summaries, " ..
  "output 1 or 2 to indicate which summary is better."

describe("rlaif.prompts #unit", function()
  it("ships the paper's templates, loadable by name", function()
    for _, n in ipairs { "summarize-base", "summarize-detailed", "summarize-base-cot", "summarize-detailed-cot",
      "helpful-base", "helpful-base-cot", "harmless-base", "harmless-base-cot", "drlaif-score" } do
      assert.equal(n, prompts.load(n).name)
    end
    local t = prompts.load("summarize-base")
    assert.equal(seed_base, t:renderer():prompt(prompts.vars("T", "A", "B")):match("^(.-)\n"))
    local d = prompts.load("summarize-detailed"):renderer().preamble
    assert.matches("^A good summary is a shorter piece of text", d)
    assert.matches("output 1 or 2 to indicate which summary best adheres to coherence, accuracy, coverage, " ..
      "and overall quality as defined above%.$", d)
    assert.matches("explain which summary best adheres",
      prompts.load("summarize-detailed-cot"):renderer().preamble)
    assert.equal(-1, prompts.load("harmless-base").polarity)
    assert.equal("score", prompts.load("drlaif-score").kind)
  end)

  it("assembles preamble, exemplars, sample and ending", function()
    local t = prompts.parse("@@ meta\nlabels: A B\n@@ preamble\nPRE\n@@ sample\nX={context} 1={response1} " ..
      "2={response2} {{lit}}\n@@ ending\nAns=\n@@ exemplar_open\n>>\n@@ exemplar_close\n<<", "t.txt")
    local ex = { { context = "c", response1 = "r1", response2 = "r2", label = "B" } }
    local r = t:renderer { shots = 1, exemplars = ex }
    assert.equal("PRE\n\n>>\nX=c 1=r1 2=r2 {lit}\nAns=B\n\n<<\nX=x 1=y 2=z {lit}\nAns=",
      r:prompt(prompts.vars("x", "y", "z")))
    local m = r:messages(prompts.vars("x", "y", "z"))
    assert.equal("PRE", m[1].content)
    assert.equal(">>\nX=c 1=r1 2=r2 {lit}\nAns=B\n\n<<\nX=x 1=y 2=z {lit}\nAns=", m[2].content)
    local pm = r:messages(prompts.vars("x", "y", "z"), "score", nil, "prefill")
    assert.equal("assistant", pm[3].role)
    assert.equal("Ans=", pm[3].content)
  end)

  it("renders the same prompt from (context, responses, fields) as from vars", function()
    local cases = {
      { "C", "A", "B" }, { "C", 1, 2.5 }, { "C", "A", nil, { subreddit = "s", title = 1, post = "p" } },
      { "C", "A", "B", { text = "not used", response1 = "not used", subreddit = "s" } },
      { "C", "A", nil, setmetatable({ subreddit = "s", title = "t" }, { __index = { post = "P" } }) },
      { "C", "A", nil, { subreddit = "s", title = "t", post = setmetatable({}, { __tostring = function()
        return "TS" end }) } },
      { nil, "A", "B" }, { "C", "A", "B", false },
    }
    for _, name in ipairs { "summarize-base", "summarize-detailed-cot", "helpful-base", "drlaif-score" } do
      local t = prompts.load(name)
      for _, shots in ipairs(t.exemplars_name and { 0, 2 } or { 0 }) do
        local r = t:renderer { shots = shots }
        for _, c in ipairs(cases) do
          for _, step in ipairs(r.cot_ending and { "score", "cot" } or { "score" }) do
            local ok1, want = pcall(function() return r:prompt(prompts.vars(c[1], c[2], c[3], c[4]), step) end)
            local ok2, got = pcall(r.prompt_for, r, c[1], c[2], c[3], c[4], step)
            assert.equal(ok1, ok2)
            assert.equal(want, got)
          end
        end
      end
    end
  end)

  it("names file, line and slot in errors", function()
    local ok, err = pcall(prompts.parse, "@@ preamble\nP\n@@ sample\nText {nope}\n@@ ending\nE", "x.txt")
    assert.is_false(ok)
    assert.matches("^x.txt:4: unknown slot {nope} in section 'sample'", err)
    err = select(2, pcall(prompts.parse, "@@ preamble\nP\n@@ ending\nE", "y.txt"))
    assert.equal("y.txt: missing section '@@ sample'", err)
    err = select(2, pcall(prompts.parse, "@@ meta\ncolour: red\n@@ preamble\nP", "z.txt"))
    assert.equal("z.txt:2: unknown meta key 'colour'", err)
    local t = prompts.parse("@@ preamble\nP\n@@ sample\n{text}\n@@ ending\nE", "w.txt")
    err = select(2, pcall(function() return t:renderer():prompt({}) end))
    assert.matches("slot {text} has no value", err)
  end)

  it("keeps trailing spaces and drops only the newline before a marker", function()
    local t = prompts.load("drlaif-score")
    local p = t:renderer():prompt(prompts.vars("post", "sum", nil, { subreddit = "s", title = "t", post = "post" }))
    assert.matches("\nSUMMARY: sum\nSCORE: $", p)
  end)
end)
