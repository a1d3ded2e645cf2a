-- billetterie.sandbox.s360_ref: what an S-360 institution defines at set-up
-- (the static lists of the Contact API and its points of sales). The same
-- for every emulated institution; data, not state: it is not in the SQLite
-- file, so a reset or an old file always sees the current lists.
--
-- Shapes are the reference's best guesses (docs/sandbox-s360.md): a code, a
-- numeric id and a label; criteria also have a type and, for lists, the
-- allowed values.

local M = {}

M.STRUCTURE_TYPES = {
  { id = 11, code = "COMPANY", name = "Entreprise" },
  { id = 12, code = "ASSOC", name = "Association" },
  { id = 13, code = "SCHOOL", name = "Établissement scolaire" },
  { id = 14, code = "PUBLIC", name = "Administration" },
}

-- type (catalogue enum CriterionType): BOOLEAN (value "true"/"false") |
-- STRING | DATE (value YYYY-MM-DD) | LIST (`values` among the allowed ones;
-- `value` for a single one); multiple = false: one value at most.
M.CRITERIA = {
  { id = 101, code = "NEWSTHEA", name = "Lettre d'information théâtre", type = "BOOLEAN" },
  { id = 102, code = "INTEREST", name = "Centres d'intérêt", type = "LIST", multiple = true,
    values = { "THEATRE", "MUSIC", "DANCE", "CIRCUS", "YOUTH" } },
  { id = 103, code = "PROFCAT", name = "Catégorie socio-professionnelle", type = "LIST", multiple = false,
    values = { "STUDENT", "EMPLOYEE", "EXECUTIVE", "RETIRED", "OTHER" } },
  { id = 104, code = "COMMENT", name = "Commentaire", type = "STRING" },
  { id = 105, code = "MEMBSINC", name = "Adhérent depuis", type = "DATE" },
}

-- authorizationCode: String (8) in AuthorizationData
M.AUTHORIZATIONS = {
  { id = 201, code = "NEWS", name = "Recevoir les informations de l'organisme" },
  { id = 202, code = "PARTNERS", name = "Recevoir les offres de partenaires" },
  { id = 203, code = "ADDRXFER", name = "Transmettre l'adresse à des tiers" },
  { id = 204, code = "MAIL", name = "Contact par courrier" },
  { id = 205, code = "PHONE", name = "Contact par téléphone" },
  { id = 206, code = "SMS", name = "Contact par SMS" },
  { id = 207, code = "EMAIL", name = "Contact par e-mail" },
}

M.ADMIN_NUMBERS = {
  { id = 301, code = "SIRET", name = "Numéro SIRET" },
  { id = 302, code = "VAT", name = "Numéro de TVA intracommunautaire" },
  { id = 303, code = "APE", name = "Code APE / NAF" },
  { id = 304, code = "RNA", name = "Numéro RNA (associations)" },
}

-- b2b: only contacts that are structures or members of one may log on there.
M.POINTS_OF_SALES = {
  { id = 1001, code = "WEB", name = "Billetterie en ligne", saleChannelCode = "B2C", b2b = false },
  { id = 1002, code = "GROUPS", name = "Espace groupes et CE", saleChannelCode = "B2B", b2b = true },
  { id = 1003, code = "APP", name = "Application mobile", saleChannelCode = "B2C", b2b = false },
}

M.SOCIAL_PROVIDERS = { "NONE", "FACEBOOK", "GOOGLE", "TWITTER", "UEFA", "MDP", "SWISSPASS", "ACCOUNT_KIT" }

-- Individual titles S-360 accepts; anything else is stored as UNDEFINED.
M.TITLES = { "MISS", "MRS", "MR", "MR_AND_MRS", "UNDEFINED", "LADIES", "GENTLEMEN" }

M.ROLES = { "PUBLIC", "RELAY", "MEMBER" }

-- code -> entry lookups
local function index(list)
  local t = {}
  for _, e in ipairs(list) do t[type(e) == "table" and e.code or e] = type(e) == "table" and e or true end
  return t
end
M.by_code = {
  structure_type = index(M.STRUCTURE_TYPES), criterion = index(M.CRITERIA),
  authorization = index(M.AUTHORIZATIONS), admin_number = index(M.ADMIN_NUMBERS),
  provider = index(M.SOCIAL_PROVIDERS), title = index(M.TITLES), role = index(M.ROLES),
}
M.pos_by_id = {}
for _, p in ipairs(M.POINTS_OF_SALES) do M.pos_by_id[p.id] = p end

return M
