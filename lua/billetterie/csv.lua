-- RFC 4180 CSV, the way French spreadsheets export it: ';' or ',' as the
-- separator (guessed from the header line), quoted fields with "" for a
-- quote, line breaks inside quotes, CRLF or LF, an optional UTF-8 BOM.
local csv = {}

-- parse(text [, sep]) -> rows (arrays of strings), sep, starts (the file
-- line each row starts on) | nil, message
function csv.parse(text, sep)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end   -- BOM
  if not sep then
    local header = text:match("^[^\r\n]*")
    local _, semis = header:gsub(";", "")
    local _, commas = header:gsub(",", "")
    sep = semis >= commas and ";" or ","
  end
  local rows, row, field, i, n = {}, {}, {}, 1, #text
  local line, starts = 1, { 1 }
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' and #field == 0 then
      -- a quoted field: up to the closing quote, "" being one quote
      local j, parts = i + 1, {}
      while true do
        local q = text:find('"', j, true)
        if not q then return nil, ("line %d: unterminated quoted field"):format(line) end
        parts[#parts + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      local value = table.concat(parts)
      local _, breaks = value:gsub("\n", "")
      line = line + breaks
      field = { value }
      local after = text:sub(i, i)
      if after ~= sep and after ~= "\r" and after ~= "\n" and after ~= "" then
        return nil, ("line %d: text after a closing quote"):format(line)
      end
    elseif c == sep then
      row[#row + 1] = table.concat(field)
      field = {}
      i = i + 1
    elseif c == "\r" or c == "\n" then
      row[#row + 1] = table.concat(field)
      rows[#rows + 1] = row
      row, field = {}, {}
      i = i + ((c == "\r" and text:sub(i + 1, i + 1) == "\n") and 2 or 1)
      line = line + 1
      starts[#rows + 1] = line
    else
      local j = text:find("[" .. sep .. "\r\n\"]", i)
      local stop = j and j - 1 or n
      field[#field + 1] = text:sub(i, stop)
      i = stop + 1
      if j and text:sub(j, j) == '"' then
        return nil, ("line %d: quote inside an unquoted field"):format(line)
      end
    end
  end
  if #field > 0 or #row > 0 then
    row[#row + 1] = table.concat(field)
    rows[#rows + 1] = row
  end
  starts[#rows + 1] = nil
  return rows, sep, starts
end

-- Whether every field of a row is empty: a blank line, or one of the
-- ";;;;" rows a spreadsheet leaves below its data.
local function blank(row)
  for k = 1, #row do if row[k] ~= "" then return false end end
  return true
end

-- records(text) -> list of { header = value } from the first line's names,
-- header, lines (the file line each record starts on, the header being
-- line 1) | nil, message (a line with another number of fields is an
-- error). Blank lines are not records, nor are the rows of empty fields
-- after the last record (a spreadsheet's ";;;;"). A row of empty fields
-- between records stays one: records are numbered by their rank (bulk's
-- journal), and skipping it would renumber every record after it.
function csv.records(text, sep)
  local rows, err, starts = csv.parse(text, sep)
  if not rows then return nil, err end
  local header = rows[1] or {}
  local last = 1
  for r = #rows, 2, -1 do
    if not blank(rows[r]) then last = r; break end
  end
  local out, lines = {}, {}
  for r = 2, #rows do
    local row = rows[r]
    rows[r] = nil   -- each row once converted: the rows and the records never both stay whole
    if not ((#row == 1 and row[1] == "") or r > last) then
      if #row ~= #header then
        return nil, ("line %d has %d fields, the header has %d"):format(starts[r], #row, #header)
      end
      local rec = {}
      for k, name in ipairs(header) do rec[name] = row[k] end
      out[#out + 1] = rec
      lines[#out] = starts[r]
    end
  end
  return out, header, lines
end

-- The bytes that may follow a lead byte of UTF-8 (RFC 3629: no overlong
-- form, no surrogate, nothing past U+10FFFF): { second byte's range, how
-- many continuation bytes after it }.
local LEADS = {}
for b = 0xC2, 0xDF do LEADS[b] = { 0x80, 0xBF, 0 } end
LEADS[0xE0] = { 0xA0, 0xBF, 1 }
for b = 0xE1, 0xEC do LEADS[b] = { 0x80, 0xBF, 1 } end
LEADS[0xED] = { 0x80, 0x9F, 1 }
for b = 0xEE, 0xEF do LEADS[b] = { 0x80, 0xBF, 1 } end
LEADS[0xF0] = { 0x90, 0xBF, 2 }
for b = 0xF1, 0xF3 do LEADS[b] = { 0x80, 0xBF, 2 } end
LEADS[0xF4] = { 0x80, 0x8F, 2 }

-- utf8_error(text) -> nil when text is valid UTF-8 | the line (as the
-- parser counts them: CRLF, CR or LF) of its first byte that is not. Lua
-- 5.4's utf8 library is not in LuaJIT: checked by hand, ASCII skipped by find.
function csv.utf8_error(text)
  local i, byte = 1, string.byte
  while true do
    i = text:find("[\128-\255]", i)
    if not i then return nil end
    local lead = LEADS[byte(text, i)]
    local ok = lead ~= nil
    if ok then
      local b = byte(text, i + 1)
      ok = b ~= nil and b >= lead[1] and b <= lead[2]
      for k = 2, lead[3] + 1 do
        b = byte(text, i + k)
        ok = ok and b ~= nil and b >= 0x80 and b <= 0xBF
      end
    end
    if not ok then
      local before = text:sub(1, i - 1):gsub("\r\n?", "\n")
      local _, breaks = before:gsub("\n", "")
      return breaks + 1
    end
    i = i + lead[3] + 2
  end
end

-- One field, quoted when it must be, for writing reports.
function csv.field(v, sep)
  v = tostring(v == nil and "" or v)
  if v:find('[' .. (sep or ";") .. '"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

return csv
