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

  it("names file, line and slot in errors", function()
    assert.has_error(function() prompts.parse("@@ preamble\nP\n@@ sample\nText {nope}\n@@ ending\nE", "x.txt") end)
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
