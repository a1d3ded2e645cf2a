-- Bulk organisme import from a CSV export (';', quotes, accents), resumable:
-- kill it at any point and run it again, nothing is created twice.
--   lua5.4 examples/bulk_import.lua organismes.csv   (exit status 1 if a record failed)
-- (account from the BILLETTERIE_* environment, BILLETTERIE_API_* included: README, "Quick start")
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"

local path = arg[1] or "examples/data/organismes.csv"
local report = assert(bulk.import{
  client = billetterie.from_env{ retries = 2 },
  csv = path,
  journal = os.getenv("JOURNAL") or (path .. ".journal.db"),   -- keep it to resume
  report = path .. ".failures.csv",
  map = {   -- organisme / adresse / relation field <- CSV column
    ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
    ["adresses.1.type_adresse"] = "Type", ["adresses.1.ville"] = "Ville",
    ["adresses.1.code_postal"] = "Code postal", ["adresses.1.adress1"] = "Adresse",
    ["Niveau_de_relations.1.Niveau_relation"] = "Relation", ["Niveau_de_relations.1.checked"] = true,
  },
  concurrency = 8, progress = true,
})
print(("%d records: %d created, %d failed (see %s), %d unknown"):format(
  report.total, report.created, report.failed, report.report, report.unknown))
if report.failed > 0 or report.unknown > 0 then os.exit(1) end   -- run it again once fixed: it resumes
