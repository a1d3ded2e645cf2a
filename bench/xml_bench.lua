-- xml_bench: throughput of billetterie.xml on a generated season feed.
--
--   lua5.4 bench/xml_bench.lua [MB]     (default 20; LuaJIT works too)
--
-- Generates a CATALOGUE of SPECTACLE elements of about MB megabytes, then
-- times, best of 3 (os.clock, process CPU time, so the tables built and
-- collected are counted):
--   decode          xml.decode of the whole string (one Lua tree)
--   reader string   xml.reader({ string = s }, "SPECTACLE"), every element
--   reader file     xml.reader({ file = tmp }, "SPECTACLE"), every element
-- and prints one line each: name=... mb=... seconds=... mb_per_s=...

local xml = require "billetterie.xml"

local mb = tonumber(arg[1] or "20")
if not mb or mb <= 0 then
  io.stderr:write("usage: xml_bench.lua [MB]\n")
  os.exit(2)
end

local function spectacle(i)
  return ('<SPECTACLE IDENT="%d" NOM="Spectacle n°%d"><TYPE>Opéra</TYPE>'
    .. '<GENRE>Lyrique &amp; classique</GENRE><DUREE>02:30</DUREE>'
    .. '<REPRESENTATIONS>'
    .. '<REPRESENTATION REP_DATE="12/03/2027" REP_HEURE="20:30:00" REP_SALLE="1"/>'
    .. '<REPRESENTATION REP_DATE="13/03/2027" REP_HEURE="15:00:00" REP_SALLE="2"/>'
    .. '<REPRESENTATION REP_DATE="14/03/2027" REP_HEURE="20:30:00" REP_SALLE="1"/>'
    .. '</REPRESENTATIONS></SPECTACLE>\n'):format(i, i)
end

local parts = { '<?xml version="1.0" encoding="UTF-8"?>\n<CATALOGUE><SALLES>'
  .. '<SALLE SALLE_ID="1" SALLE_MERE_ID="0">Grande salle</SALLE></SALLES>'
  .. '<GRILLES><GRILLE><libelle>Tarif A</libelle><CATEGORIE_PUBLIQUE><ZONE>'
  .. '<PLEIN FRAIS="1,5">18,50</PLEIN></ZONE></CATEGORIE_PUBLIQUE></GRILLE></GRILLES>\n<SPECTACLES>\n' }
local size, n = #parts[1], 0
while size < mb * 1e6 do
  n = n + 1
  parts[#parts + 1] = spectacle(n)
  size = size + #parts[#parts]
end
parts[#parts + 1] = "</SPECTACLES></CATALOGUE>\n"
local doc = table.concat(parts)
parts = nil

local path = os.tmpname()
local f = assert(io.open(path, "wb"))
f:write(doc)
f:close()

local function stream(source)
  local r = assert(xml.reader(source, "SPECTACLE"))
  local count = 0
  while true do
    local item, err = r:next()
    if not item then assert(not err, err); break end
    count = count + 1
  end
  r:close()
  assert(count == n, "got " .. count .. " of " .. n)
end

local runs = {
  { "decode", function()
      local t = assert(xml.decode(doc))
      assert(#t.SPECTACLES.SPECTACLE == n)
    end },
  { "reader_string", function() stream({ string = doc }) end },
  { "reader_file", function() stream({ file = path }) end },
}

print(("# %s, %d SPECTACLE, %.1f MB"):format(rawget(_G, "jit") and jit.version or _VERSION, n, #doc / 1e6))
for _, run in ipairs(runs) do
  local best = math.huge
  for _ = 1, 3 do
    collectgarbage("collect")
    local t0 = os.clock()
    run[2]()
    local dt = os.clock() - t0
    if dt < best then best = dt end
  end
  print(("name=%s mb=%.1f seconds=%.3f mb_per_s=%.1f"):format(run[1], #doc / 1e6, best, #doc / 1e6 / best))
end
os.remove(path)
