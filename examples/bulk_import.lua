-- Bulk organisme import from a CSV export (';', quotes, accents), resumable:
-- kill it at any point and run it again, nothing is created twice.
--   lua5.4 examples/bulk_import.lua organismes.csv
-- The CSV must be UTF-8 (Excel: "CSV UTF-8 (délimité par des virgules)").
-- (exit status, as `billetterie import`: 1 if a record is not created yet,
-- the journal is busy or in use (run again), or the CSV must be corrected
-- (unreadable, malformed, not UTF-8); 2 if the import cannot run as given:
-- a journal or report path that cannot be used, a map column the header
-- lacks, no change feed credentials)
-- (account from the BILLETTERIE_* environment, BILLETTERIE_API_* included,
-- required: README, "Quick start")
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"

local path = arg[1] or "examples/data/organismes.csv"
local report, err = bulk.import{
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
  -- FEED_MARGIN=0 only when the vendor's server shares this machine's time
  -- zone (both in metropolitan France): lost answers are then looked up in a
  -- short list (by default it spans 12 h of the server's changes)
  feed_margin = tonumber(os.getenv("FEED_MARGIN") or ""),
}
if not report then   -- the CSV, map, client, journal or report cannot be used, or the journal is busy
  io.stderr:write(tostring(err), "\n")
  os.exit((err.retryable or err.param == "csv") and 1 or 2)
end
print(("%d records: %d created, %d failed (see %s), %d unknown, %d not sent"):format(
  report.total, report.created, report.failed, report.report, report.unknown, report.pending))
-- unknown: sent, outcome not known yet; not sent: held back until those are
-- checked on the server. unresolved says why (change feed unreachable) or when to run again,
-- and how to settle by hand a record checked on the server (bulk.settle).
if report.unresolved then print("not finished: " .. report.unresolved) end
if report.failed + report.unknown + report.pending > 0 then
  os.exit(1)   -- correct the failed records in the CSV and run it again: it resumes
end
