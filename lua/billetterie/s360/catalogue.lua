-- The S-360 Contact API (v2_21) and ContactSocialLoginService (v1_0) as
-- data: one catalogue drives both wire protocols of the client
-- (billetterie.s360) and the sandbox's emulation (billetterie.sandbox.s360*).
-- Sources: the seed (method list, remember-me cookie, 2 h static cache) and
-- /work/shared/reference/s360-contact-api.md. Pure data, no functions.
--
-- Layout (change it only additively: the sandbox reads it):
--   hosts[environment]   base URL pattern, "%s" = institution code (lower case)
--   soap                 SOAP 1.1 constants: envelope namespace, WS-Security
--                        namespaces and PasswordText type, content type, the
--                        SOAPAction value sent (""), path prefix
--   rest                 REST_RPC constants: path prefix, content type, JWT
--                        header and lifetime (seconds, exp - iat <= 30)
--   services[key]        key = "information" | "authentication" | "social":
--     name               wire class name (ContactInformationPublicService)
--     rest_name          REST {serviceName} (contactInformationPublicService)
--     default_version    version used when the client gives none
--     versions[ver]      { soap_path = full path of the SOAP endpoint,
--                          namespace = SOAP target namespace (trailing "/"),
--                          rest_path = REST path up to and including the
--                          last "/" (append the method name) }
--   common_params        parameters every method accepts (requestId), sent
--                        first; the result echoes requestId
--   methods[name]        name = the SOAP operation = the REST {methodName}
--                        (the vendor's spellings, typos included):
--     service            key into services
--     params             ordered list of parameters (SOAP child order)
--     result             result type name: the SOAP element under
--                        <{name}Response> and the REST top-level object
--     static             true: organisation-level list, cached (cache_ttl)
--     write              true: changes data
--     unrepeatable       true: sending it twice does not give the same
--                        outcome (authenticate in token mode rotates the
--                        pair, recoverPassword mails another random
--                        password, changePassword's currentPassword is then
--                        wrong): not retried after a failure that may have
--                        been processed. Every other method is, the seed
--                        saying they are all transactional and idempotent.
--     alias              friendly Lua method name (also callable)
--     list_field         the result's one list, the point of the method: the
--                        client gives {} when the answer has none (SOAP
--                        cannot tell an empty list from an absent one)
--     guessed            true when the method itself is a best guess
--   field (param or type field):
--     { name =, type =, required = true|nil, list = true|nil, max = n,
--       enum = "EnumName" (when type = "enum"), secret = true|nil }
--     type: "string" | "long" | "int" | "boolean" | "date" | "double" |
--           "enum" | "map" (String -> String, SOAP: <entry><key/><value/>) |
--           a name of types[] (nested element / JSON object)
--     list = true: repeated element in SOAP, JSON array in REST
--   types[name]          { fields = { field, ... } } (alphabetical, like the
--                        vendor's reference pages); result types include
--                        requestId/statusCode/statusDetail (base_result)
--   enums[name]          list of accepted values
--   details_fields[d]    getContactData: which ContactDataResult fields each
--                        `details` value brings (GENERAL when none is given)
--   secrets              field names never logged nor put in errors
--   cache_ttl            seconds the static lists are cached (seed: >= 2 h)
--   rate_limit           calls per minute per institution (reference §4)
--
-- CHOICE marks a best guess where the reference says UNKNOWN (see
-- docs/s360.md for the list); values without it are documented.
local base_result = {
  { name = "requestId", type = "int" },
  { name = "statusCode", type = "string" },
  { name = "statusDetail", type = "string" },
}

return {
  source = "S-360 Contact API v2_21 (seed 000) + reference s360-contact-api.md",
  success = "success",
  cache_ttl = 7200,
  rate_limit = { calls = 180, per = 60 },

  hosts = {
    prod = "https://%s.ws.secutix.com",
    demo = "https://%s.demo-ws.secutix.com",
    pp = "https://%s.pp-ws.secutix.com",
  },

  soap = {
    envelope_ns = "http://schemas.xmlsoap.org/soap/envelope/",
    wsse_ns = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    wsu_ns = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    password_type = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText",
    content_type = "text/xml; charset=utf-8",
    soap_action = "",   -- CHOICE: SOAPAction UNKNOWN; an empty value is sent, the sandbox ignores it
    path_prefix = "/tnco/external-remoting/",
    -- Prefixes the real server uses in answers (clients must not rely on them).
    response_prefixes = { envelope = "S", service = "ns2" },
  },

  rest = {
    path_prefix = "/tnco/backend-apis/",
    content_type = "application/json",
    jwt = { alg = "HS256", typ = "JWT", lifetime = 30, units = "seconds" },
    -- CHOICE: the HS256 secret is the operator password; claims sub =
    -- institution code (upper case), aud = operator, iss = partner name.
  },

  services = {
    information = {
      name = "ContactInformationPublicService",
      rest_name = "contactInformationPublicService",
      default_version = "v2_21",
      versions = {
        v2_21 = {
          soap_path = "/tnco/external-remoting/com.secutix.service.contact.v2_21.ContactInformationPublicService.webservice",
          namespace = "http://v2_21.ContactInformationPublicService.service.secutix.com/",
          rest_path = "/tnco/backend-apis/contactInformationPublicService/v2_21/",
        },
      },
    },
    authentication = {
      name = "ContactAuthenticationPublicService",
      rest_name = "contactAuthenticationPublicService",
      default_version = "v2_21",
      versions = {
        v2_21 = {
          soap_path = "/tnco/external-remoting/com.secutix.service.contact.v2_21.ContactAuthenticationPublicService.webservice",
          -- [INF] pattern-inferred namespace (reference §1.2)
          namespace = "http://v2_21.ContactAuthenticationPublicService.service.secutix.com/",
          rest_path = "/tnco/backend-apis/contactAuthenticationPublicService/v2_21/",
        },
      },
    },
    social = {
      name = "ContactSocialLoginService",
      rest_name = "contactSocialLoginService",
      default_version = "v1_0",
      versions = {
        v1_0 = {
          soap_path = "/tnco/external-remoting/com.secutix.service.contact.sociallogin.v1_0.ContactSocialLoginService.webservice",
          namespace = "http://v1_0.ContactSocialLoginService.sociallogin.service.secutix.com/",
          rest_path = "/tnco/backend-apis/contactSocialLoginService/v1_0/",
        },
      },
    },
  },

  -- CHOICE: requestId accepted by every method (optional, first child) and
  -- echoed in the result (reference §1.4 best guess).
  common_params = {
    { name = "requestId", type = "int" },
  },

  methods = {
    -- ContactInformationPublicService ------------------------------------
    getContactData = {
      service = "information", alias = "get_contact_data",
      params = {
        { name = "contactNumber", type = "string", max = 20, required = true },
        { name = "details", type = "enum", enum = "ContactDetail", list = true },
      },
      result = "ContactDataResult",
    },
    searchContactByCriteria = {
      service = "information", alias = "search_contact_by_criteria",
      params = {   -- CHOICE: one criteria object + details (reference best guess)
        { name = "searchCriteria", type = "ContactSearchCriteria", required = true },
        { name = "details", type = "enum", enum = "ContactDetail", list = true },
      },
      result = "ContactSearchResult", list_field = "contacts",
    },
    saveIndividualContactData = {
      service = "information", alias = "save_individual_contact_data", write = true,
      params = {   -- CHOICE: contactNumber absent -> create; lists upsert by key, see docs/s360.md
        { name = "contactNumber", type = "string", max = 20 },
        { name = "individualContactData", type = "IndividualContactData" },
        { name = "addresses", type = "ContactAddressData", list = true },
        { name = "authorizations", type = "AuthorizationData", list = true },
        { name = "contactCriteria", type = "ContactCriterionData", list = true },
        { name = "createLogin", type = "boolean" },
        { name = "password", type = "string", secret = true },
      },
      result = "ContactSaveResult",
    },
    saveStructureContactData = {
      service = "information", alias = "save_structure_contact_data", write = true,
      params = {   -- CHOICE: as saveIndividualContactData with a structure block
        { name = "contactNumber", type = "string", max = 20 },
        { name = "structureContactData", type = "StructureContactData" },
        { name = "addresses", type = "ContactAddressData", list = true },
        { name = "authorizations", type = "AuthorizationData", list = true },
        { name = "contactCriteria", type = "ContactCriterionData", list = true },
      },
      result = "ContactSaveResult",
    },
    saveStructureAdministrativeNumbers = {
      service = "information", alias = "save_structure_administrative_numbers", write = true,
      params = {   -- CHOICE: replaces the structure's whole list
        { name = "contactNumber", type = "string", max = 20, required = true },
        { name = "administrativeNumbers", type = "AdministrativeNumberData", list = true },
      },
      result = "WebMethodResult",
    },
    saveStructureMember = {
      service = "information", alias = "save_structure_member", write = true,
      params = {   -- CHOICE: memberContactNumber absent -> a new individual from individualContactData
        { name = "structureContactNumber", type = "string", max = 20, required = true },
        { name = "memberContactNumber", type = "string", max = 20 },
        { name = "individualContactData", type = "IndividualContactData" },
        { name = "role", type = "enum", enum = "MemberRole" },
        { name = "function", type = "string", max = 100 },
      },
      result = "ContactSaveResult",   -- contactNumber = the member's
    },
    deleteStructureMember = {
      service = "information", alias = "delete_structure_member", write = true,
      params = {
        { name = "structureContactNumber", type = "string", max = 20, required = true },
        { name = "memberContactNumber", type = "string", max = 20, required = true },
      },
      result = "WebMethodResult",
    },
    listStructureMembersByCriteria = {
      service = "information", alias = "list_structure_members_by_criteria",
      params = {
        { name = "memberSearchCriteria", type = "StructureMemberCriteria", required = true },
      },
      result = "StructureMemberListResult", list_field = "members",
    },
    getStructureTypes = {
      service = "information", alias = "get_structure_types", static = true,
      params = {},
      result = "StructureTypesResult", list_field = "structureTypes",
    },
    getAvailableContactCriteria = {
      service = "information", alias = "get_available_contact_criteria", static = true,
      params = {},
      result = "ContactCriteriaDefinitionResult", list_field = "contactCriteria",
    },
    getAvailableAutorizations = {   -- (sic)
      service = "information", alias = "get_available_authorizations", static = true,
      params = {},
      result = "AuthorizationDefinitionResult", list_field = "authorizations",
    },
    getAvailableAdmnistrativeNumbers = {   -- (sic)
      service = "information", alias = "get_available_administrative_numbers", static = true,
      params = {},
      result = "AdministrativeNumberDefinitionResult", list_field = "administrativeNumbers",
    },

    -- ContactAuthenticationPublicService ---------------------------------
    authenticate = {
      -- write: token mode rotates the remember-me pair, so a blind retry
      -- could present an already invalidated pair.
      service = "authentication", alias = "authenticate", write = true, unrepeatable = true,
      params = {
        { name = "contactAuthenticationData", type = "ContactAuthenticationData", required = true },
      },
      result = "ContactAuthenticationResult",
    },
    recoverPassword = {
      service = "authentication", alias = "recover_password", write = true, unrepeatable = true,
      params = {   -- CHOICE (reference best guess)
        { name = "email", type = "string", required = true },
        { name = "pointOfSalesId", type = "long" },
      },
      result = "WebMethodResult",
    },
    changePassword = {
      service = "authentication", alias = "change_password", write = true, unrepeatable = true,
      params = {
        { name = "contactNumber", type = "string", max = 20, required = true },
        { name = "currentPassword", type = "string", required = true, secret = true },
        { name = "newPassword", type = "string", required = true, secret = true },
      },
      result = "WebMethodResult",
    },
    listAuthorizedPOS = {
      service = "authentication", alias = "list_authorized_pos",
      params = {   -- CHOICE: the contact identified as for authenticate
        { name = "contactAuthenticationData", type = "ContactAuthenticationData", required = true },
      },
      result = "AuthorizedPOSResult", list_field = "pointOfSales",
    },

    -- ContactSocialLoginService 1.0 ----------------------------------------
    addLink = {
      service = "social", alias = "add_link", write = true,
      params = {
        { name = "contactNumber", type = "string", max = 20, required = true },
        { name = "provider", type = "enum", enum = "IdentityProvider", required = true },
        { name = "providerUserReference", type = "string", required = true },
      },
      result = "WebMethodResult2",
    },
    createUser = {
      service = "social", alias = "create_user", write = true,
      params = {
        { name = "signUpData", type = "SignUpData", required = true },
        { name = "provider", type = "enum", enum = "IdentityProvider", required = true },
        { name = "providerUserReference", type = "string", required = true },
      },
      result = "WebMethodResult2",   -- CHOICE (UNKNOWN result type)
    },
    removeLink = {
      -- CHOICE: the reference's page stops after createUser and guesses "at
      -- least a link-removal counterpart of addLink"; same parameters.
      service = "social", alias = "remove_link", write = true, guessed = true,
      params = {
        { name = "contactNumber", type = "string", max = 20, required = true },
        { name = "provider", type = "enum", enum = "IdentityProvider", required = true },
        { name = "providerUserReference", type = "string", required = true },
      },
      result = "WebMethodResult2",
    },
  },

  enums = {
    ContactDetail = {
      "GENERAL", "QUALITIES", "AUTHORIZATIONS", "CRITERIA", "INDICATORS", "ADVANTAGES",
      "ADDRESSES", "COM_MEANS", "FINANCIAL", "CONNECTIONS", "INDIVIDUAL_PHOTO", "INVALIDATED_QUALITIES",
    },
    ContactTypeScope = { "INDIVIDUAL", "STRUCTURE", "ANY" },
    ContactType = { "INDIVIDUAL", "STRUCTURE" },
    ContactRole = { "PUBLIC", "RELAY", "MEMBER" },
    MemberRole = { "RELAY", "MEMBER" },
    Title = { "MISS", "MRS", "MR", "MR_AND_MRS", "UNDEFINED", "LADIES", "GENTLEMEN" },
    Gender = { "FEMALE", "MALE", "UNKNOWN" },
    IdentityProvider = { "NONE", "FACEBOOK", "GOOGLE", "TWITTER", "UEFA", "MDP", "SWISSPASS", "ACCOUNT_KIT" },
    NormalizationRating = { "UNKNOWN", "COUNTRY", "ZIPCODE", "TOWN", "WAY", "WAYNUMBER" },
    NormalizationState = { "NORMALIZED", "TO_BE_NORMALIZED", "NOT_TO_BE_NORMALIZED", "NOT_NORMALIZED" },
    AdvantageType = { "PUBLIC", "CODE", "CONTACT" },
    AvailabilityLevel = { "GOOD", "LIMITED", "NONE" },
    CriterionType = { "BOOLEAN", "STRING", "DATE", "LIST" },   -- CHOICE
  },

  -- CHOICE (reference §2.1 best-guess mapping); GENERAL when details is empty.
  details_fields = {
    GENERAL = { "contactId", "contactNumber", "createdFrom", "creationDate", "endValidityDate", "function",
                "guest", "hasWarning", "individualContact", "login", "role", "state", "structureContact",
                "administrativeNumbers", "type" },
    QUALITIES = { "contactQualities" },
    INVALIDATED_QUALITIES = { "contactQualities" },
    AUTHORIZATIONS = { "authorizations" },
    CRITERIA = { "contactCriteria" },
    INDICATORS = { "indicators" },
    ADVANTAGES = { "advantages", "hasAdvantages" },
    ADDRESSES = { "addresses" },
    COM_MEANS = { "communicationMeans" },
    FINANCIAL = { "financialData" },
    CONNECTIONS = { "contactConnections" },
    INDIVIDUAL_PHOTO = { "individualContact" },   -- its photo field
  },

  secrets = {
    password = true, currentPassword = true, newPassword = true, uniqueToken = true,
  },

  types = {
    -- Result types ---------------------------------------------------------
    WebMethodResult = { fields = base_result },
    WebMethodResult2 = { fields = base_result },
    ContactDataResult = {
      fields = {
        { name = "addresses", type = "ContactAddressData", list = true },
        { name = "administrativeNumbers", type = "AdministrativeNumberData", list = true },  -- CHOICE (structures)
        { name = "advantages", type = "ContactAdvantageData", list = true },
        { name = "authorizations", type = "AuthorizationData", list = true },
        { name = "communicationMeans", type = "CommunicationMeanData", list = true },
        { name = "contactConnections", type = "ContactConnectionDetailed", list = true },
        { name = "contactCriteria", type = "ExternalContactCriterionData", list = true },
        { name = "contactFileHistoryCriteria", type = "ContactFileHistoryCriteria" },
        { name = "contactId", type = "long" },
        { name = "contactNumber", type = "string", max = 20 },
        { name = "contactQualities", type = "ContactQuality", list = true },
        { name = "createdFrom", type = "map" },
        { name = "creationDate", type = "date" },
        { name = "endValidityDate", type = "date" },
        { name = "financialData", type = "FinancialData" },
        { name = "function", type = "string" },
        { name = "guest", type = "boolean" },             -- CHOICE
        { name = "hasAdvantages", type = "boolean" },
        { name = "hasWarning", type = "boolean" },
        { name = "indicators", type = "IndicatorData", list = true },
        { name = "individualContact", type = "IndividualContactData" },
        { name = "login", type = "string" },              -- CHOICE
        { name = "requestId", type = "int" },
        { name = "role", type = "enum", enum = "ContactRole" },      -- CHOICE
        { name = "state", type = "string" },              -- CHOICE
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
        { name = "structureContact", type = "StructureContactData" },  -- CHOICE
        { name = "type", type = "enum", enum = "ContactType" },        -- CHOICE
      },
    },
    ContactSearchResult = {   -- CHOICE
      fields = {
        { name = "contacts", type = "ContactDataResult", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    ContactSaveResult = {   -- CHOICE
      fields = {
        { name = "contactId", type = "long" },
        { name = "contactNumber", type = "string", max = 20 },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    StructureMemberListResult = {   -- CHOICE
      fields = {
        { name = "members", type = "StructureMemberData", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    StructureTypesResult = {   -- CHOICE
      fields = {
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
        { name = "structureTypes", type = "ReferenceData", list = true },
      },
    },
    ContactCriteriaDefinitionResult = {   -- CHOICE
      fields = {
        { name = "contactCriteria", type = "ContactCriterionDefinition", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    AuthorizationDefinitionResult = {   -- CHOICE
      fields = {
        { name = "authorizations", type = "ReferenceData", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    AdministrativeNumberDefinitionResult = {   -- CHOICE
      fields = {
        { name = "administrativeNumbers", type = "ReferenceData", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },
    ContactAuthenticationResult = {
      fields = {
        { name = "contactNumber", type = "string", max = 20 },
        { name = "identification", type = "string" },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
        { name = "uniqueToken", type = "string", secret = true },
      },
    },
    AuthorizedPOSResult = {   -- CHOICE
      fields = {
        { name = "pointOfSales", type = "PointOfSalesData", list = true },
        { name = "requestId", type = "int" },
        { name = "statusCode", type = "string" },
        { name = "statusDetail", type = "string" },
      },
    },

    -- Data types -------------------------------------------------------------
    ContactAddressData = {
      fields = {
        { name = "billingAddress", type = "boolean" },
        { name = "contactAddressId", type = "long" },
        { name = "countryCode", type = "string", max = 8 },
        { name = "formattedAddress", type = "string" },
        { name = "main", type = "boolean" },
        { name = "name", type = "string" },
        { name = "normalizationRating", type = "enum", enum = "NormalizationRating" },
        { name = "normalizationState", type = "enum", enum = "NormalizationState" },
        { name = "shippingAddress", type = "boolean" },
        { name = "street1", type = "string" },
        { name = "street2", type = "string" },
        { name = "street3", type = "string" },
        { name = "street4", type = "string" },
        { name = "town", type = "string" },
        { name = "zipCode", type = "string", max = 8 },
      },
    },
    ContactAdvantageData = {
      fields = {
        { name = "advantageId", type = "long" },
        { name = "advantageType", type = "enum", enum = "AdvantageType" },
        { name = "availability", type = "long" },
        { name = "availabilityLevel", type = "enum", enum = "AvailabilityLevel" },
      },
    },
    AuthorizationData = {
      fields = {
        { name = "allowed", type = "boolean", required = true },
        { name = "authorizationCode", type = "string", max = 8, required = true },
      },
    },
    CommunicationMeanData = {   -- partly CHOICE after `email`
      fields = {
        { name = "accountId", type = "string" },
        { name = "cellularPhoneProvider", type = "string" },
        { name = "communicationMeanId", type = "long" },
        { name = "contactAddressId", type = "long" },
        { name = "email", type = "string" },
        { name = "phoneNumber", type = "string" },
        { name = "type", type = "string" },
      },
    },
    IndividualContactData = {   -- CHOICE: field list UNKNOWN (reference best guess)
      fields = {
        { name = "birthDate", type = "date" },
        { name = "email", type = "string" },
        { name = "firstname", type = "string", max = 100 },
        { name = "gender", type = "enum", enum = "Gender" },
        { name = "language", type = "string", max = 2 },
        { name = "lastname", type = "string", max = 100 },
        { name = "mobilePhoneNumber", type = "string" },
        { name = "phoneNumber", type = "string" },
        { name = "photo", type = "string" },   -- base64, INDIVIDUAL_PHOTO only
        { name = "title", type = "enum", enum = "Title" },
      },
    },
    StructureContactData = {   -- CHOICE
      fields = {
        { name = "email", type = "string" },
        { name = "language", type = "string", max = 2 },
        { name = "name", type = "string", max = 100 },
        { name = "phoneNumber", type = "string" },
        { name = "structureTypeCode", type = "string" },
        { name = "website", type = "string" },
      },
    },
    AdministrativeNumberData = {   -- CHOICE
      fields = {
        { name = "code", type = "string", required = true },
        { name = "value", type = "string", required = true },
      },
    },
    ContactCriterionData = {   -- CHOICE: a code and a value or values
      fields = {
        { name = "criterionCode", type = "string", required = true },
        { name = "value", type = "string" },
        { name = "values", type = "string", list = true },
      },
    },
    ExternalContactCriterionData = {   -- CHOICE: same shape as ContactCriterionData
      fields = {
        { name = "criterionCode", type = "string" },
        { name = "value", type = "string" },
        { name = "values", type = "string", list = true },
      },
    },
    ContactQuality = {   -- CHOICE
      fields = {
        { name = "endDate", type = "date" },
        { name = "qualityCode", type = "string" },
        { name = "startDate", type = "date" },
      },
    },
    IndicatorData = {   -- `value` documented, `code` CHOICE
      fields = {
        { name = "code", type = "string" },
        { name = "value", type = "string" },
      },
    },
    FinancialData = {   -- CHOICE
      fields = {
        { name = "balance", type = "double" },
        { name = "currency", type = "string" },
      },
    },
    ContactConnectionDetailed = {   -- CHOICE
      fields = {
        { name = "connectedContactNumber", type = "string", max = 20 },
        { name = "connectionType", type = "string" },
      },
    },
    ContactFileHistoryCriteria = {   -- CHOICE
      fields = {
        { name = "biller", type = "boolean" },
        { name = "purchaser", type = "boolean" },
      },
    },
    ContactSearchCriteria = {   -- CHOICE
      fields = {
        { name = "contactNumber", type = "string", max = 20 },
        { name = "contactTypeScope", type = "enum", enum = "ContactTypeScope" },
        { name = "email", type = "string" },
        { name = "fileOwnerContactNumber", type = "string", max = 20 },
        { name = "firstname", type = "string" },
        { name = "lastname", type = "string" },
        { name = "login", type = "string" },
        { name = "maxResults", type = "int" },
        { name = "zipCode", type = "string", max = 8 },
      },
    },
    StructureMemberCriteria = {   -- CHOICE
      fields = {
        { name = "email", type = "string" },
        { name = "lastname", type = "string" },
        { name = "role", type = "enum", enum = "MemberRole" },
        { name = "structureContactNumber", type = "string", max = 20 },
      },
    },
    StructureMemberData = {   -- CHOICE
      fields = {
        { name = "function", type = "string" },
        { name = "individualContact", type = "IndividualContactData" },
        { name = "memberContactNumber", type = "string", max = 20 },
        { name = "role", type = "enum", enum = "MemberRole" },
        { name = "structureContactNumber", type = "string", max = 20 },
      },
    },
    ReferenceData = {   -- CHOICE: id, code, translated name
      fields = {
        { name = "code", type = "string" },
        { name = "id", type = "long" },
        { name = "name", type = "TranslatedValue" },
      },
    },
    ContactCriterionDefinition = {   -- CHOICE
      fields = {
        { name = "code", type = "string" },
        { name = "id", type = "long" },
        { name = "name", type = "TranslatedValue" },
        { name = "type", type = "enum", enum = "CriterionType" },
        { name = "values", type = "string", list = true },
      },
    },
    TranslatedValue = {   -- shape of S-360's translated labels elsewhere
      fields = {
        { name = "translations", type = "Translation", list = true },
      },
    },
    Translation = {
      fields = {
        { name = "locale", type = "string" },
        { name = "value", type = "string" },
      },
    },
    ContactAuthenticationData = {
      fields = {
        { name = "contactNumber", type = "string", max = 20 },
        { name = "contactTypeScope", type = "enum", enum = "ContactTypeScope" },
        { name = "guestLogin", type = "boolean" },
        { name = "identification", type = "string" },
        { name = "identityProvider", type = "enum", enum = "IdentityProvider" },
        { name = "ignoreGuestLoginCheck", type = "boolean" },
        { name = "login", type = "string" },
        { name = "operatorLogin", type = "boolean" },
        { name = "password", type = "string", secret = true },
        { name = "pointOfSalesId", type = "long" },
        { name = "providerUserReference", type = "string" },
        { name = "rememberMe", type = "boolean" },
        { name = "socialLogin", type = "boolean" },
        { name = "structureContactNumber", type = "string", max = 20 },
        { name = "targetContactNumber", type = "string", max = 20 },
        { name = "uniqueToken", type = "string", secret = true },
      },
    },
    PointOfSalesData = {   -- CHOICE
      fields = {
        { name = "code", type = "string" },
        { name = "id", type = "long" },
        { name = "name", type = "string" },
        { name = "saleChannelCode", type = "string" },
      },
    },
    SignUpData = {
      fields = {
        { name = "email", type = "string" },
        { name = "firstname", type = "string" },
        { name = "gender", type = "string" },   -- enum FEMALE|MALE|UNKNOWN documented, but the vendor's own example sends MRS: kept lenient
        { name = "lang", type = "string" },
        { name = "lastname", type = "string" },
        { name = "phoneNumber", type = "string" },
        { name = "phonePrefix", type = "string" },
        { name = "title", type = "string" },
      },
    },
  },
}
