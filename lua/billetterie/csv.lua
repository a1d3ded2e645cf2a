-- RFC 4180 CSV, the way French spreadsheets export it: ';' or ',' as the
-- separator (guessed from the header line), quoted fields with "" for a
-- quote, line breaks inside quotes, CRLF or LF, an optional UTF-8 BOM.
local csv = {}

-- parse(text [, sep]) -> rows (arrays of strings) | nil, message
function csv.parse(text, sep)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end   -- BOM
  if not sep then
    local header = text:match("^[^\r\n]*")
    local _, semis = header:gsub(";", "")
    local _, commas = header:gsub(",", "")
    sep = semis >= commas and ";" or ","
  end
  local rows, row, field, i, n = {}, {}, {}, 1, #text
  local line = 1
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
  return rows, sep
end

-- records(text) -> list of { header = value } from the first line's names
-- | nil, message (a line with another number of fields is an error).
function csv.records(text, sep)
  local rows, err = csv.parse(text, sep)
  if not rows then return nil, err end
  local header = rows[1] or {}
  local out = {}
  for r = 2, #rows do
    local row = rows[r]
    rows[r] = nil   -- each row once converted: the rows and the records never both stay whole
    if not (#row == 1 and row[1] == "") then   -- blank line
      if #row ~= #header then
        return nil, ("record %d has %d fields, the header has %d"):format(r - 1, #row, #header)
      end
      local rec = {}
      for k, name in ipairs(header) do rec[name] = row[k] end
      out[#out + 1] = rec
    end
  end
  return out, header
end

-- One field, quoted when it must be, for writing reports.
function csv.field(v, sep)
  v = tostring(v == nil and "" or v)
  if v:find('[' .. (sep or ";") .. '"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

return csv
