-- pandoc filter for the man pages, so the markdown sources read well on a forge and the
-- pages read like man pages:
-- * tables become definition lists: the reference tables (key | type | default | meaning)
--   are four columns of long text; as tbl tables they overflow an 80-column terminal and
--   groff warns on every row, while a definition list (.TP) is how man pages document keys;
-- * with -M h3_items=true, a level-3 heading and the blocks under it become one
--   definition-list item, so each command of docs/cli.md is a linkable heading in markdown
--   and a .TP entry in prefsync(1); elsewhere level-3 headings stay subsections.

local function inlines_of(blocks)
  local out = pandoc.List()
  for i, b in ipairs(blocks) do
    if i > 1 then out:insert(pandoc.Space()) end
    if b.content then out:extend(b.content) end
  end
  return out
end

local function table_to_items(tbl)
  local simple = pandoc.utils.to_simple_table(tbl)
  local headers = {}
  for i, h in ipairs(simple.headers) do headers[i] = pandoc.utils.stringify(h) end
  local items = {}
  for _, row in ipairs(simple.rows) do
    local n = #row
    local term = inlines_of(row[1])
    -- Middle columns (type, default) go after the term as "(type: X, default: Y)"; a "—"
    -- default says nothing in a sentence.
    local extra = pandoc.List()
    for i = 2, n - 1 do
      local cell = inlines_of(row[i])
      if #cell > 0 and pandoc.utils.stringify(cell) ~= "—" then
        if #extra > 0 then extra:extend({ pandoc.Str(","), pandoc.Space() }) end
        extra:insert(pandoc.Str(headers[i] .. ":"))
        extra:insert(pandoc.Space())
        extra:extend(cell)
      end
    end
    if #extra > 0 then
      term:insert(pandoc.Space())
      term:insert(pandoc.Str("("))
      term:extend(extra)
      term:insert(pandoc.Str(")"))
    end
    local definition = n > 1 and row[n] or {}
    if #definition == 0 then definition = { pandoc.Plain({ pandoc.Str("-") }) } end
    table.insert(items, { term, { definition } })
  end
  return pandoc.DefinitionList(items)
end

function Pandoc(doc)
  local h3_items = doc.meta.h3_items ~= nil and pandoc.utils.stringify(doc.meta.h3_items) == "true"
  local out = pandoc.List()
  local items = nil
  local function flush()
    if items then out:insert(pandoc.DefinitionList(items)) end
    items = nil
  end
  for _, block in ipairs(doc.blocks) do
    if h3_items and block.t == "Header" and block.level == 3 then
      items = items or {}
      table.insert(items, { block.content, { pandoc.List() } })
    elseif block.t == "Header" then
      flush()
      out:insert(block)
    elseif block.t == "Table" and items then
      -- a table under a command (its options) is nested in that command's entry
      items[#items][2][1]:insert(table_to_items(block))
    elseif block.t == "Table" then
      out:insert(table_to_items(block))
    elseif items then
      items[#items][2][1]:insert(block)
    else
      out:insert(block)
    end
  end
  flush()
  doc.blocks = out
  return doc
end
