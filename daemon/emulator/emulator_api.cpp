#include "daemon/emulator/emulator_api.hpp"

#include <boost/url.hpp>
#include <charconv>
#include <variant>

#include "daemon/emulator/body_validation.hpp"

namespace prefsync::emulator {
namespace {

namespace urls = boost::urls;

HttpResponse respond(const Reply& r, std::string endpoint) {
    HttpResponse out;
    out.status = r.status;
    if (!r.body.is_null()) out.body = json::serialize(r.body);
    out.endpoint = std::move(endpoint);
    return out;
}

HttpResponse fail(int status, const std::string& message, std::string endpoint) {
    return respond(Reply{status, json::object{{"Message", message}}}, std::move(endpoint));
}

class Query {
public:
    explicit Query(const urls::url_view& url) {
        // As ASP.NET reads a query string: a form, where '+' is a space.
        for (auto p : url.params(urls::encoding_opts(true)))
            values_.emplace(lower(p.key), p.has_value ? std::string(p.value) : "");
    }
    // Parameter names are case-insensitive, as ASP.NET binds them.
    std::optional<std::string> get(std::string_view name) const {
        auto it = values_.find(lower(name));
        if (it == values_.end()) return std::nullopt;
        return it->second;
    }
    std::string value(std::string_view name) const { return get(name).value_or(""); }
    // Indexed arrays: prefix "customFields" and fields {"Name","Value"} → [{Name, Value}, ...].
    std::vector<std::map<std::string, std::string>> indexed(std::string_view prefix,
                                                            const std::vector<std::string>& fields) const {
        std::vector<std::map<std::string, std::string>> out;
        for (std::size_t i = 0;; ++i) {
            std::map<std::string, std::string> item;
            std::string base = lower(prefix) + "[" + std::to_string(i) + "]";
            if (fields.empty()) {
                if (auto v = get(base)) item[""] = *v;
            } else {
                for (const auto& f : fields)
                    if (auto v = get(base + "." + f)) item[f] = *v;
            }
            if (item.empty()) break;
            out.push_back(std::move(item));
        }
        return out;
    }

private:
    std::multimap<std::string, std::string> values_;
};

std::optional<std::int64_t> parse_id(std::string_view s) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

bool ieq(std::string_view a, std::string_view b) {
    return lower(a) == lower(b);
}
bool contains_i(std::string_view hay, std::string_view needle) {
    return lower(hay).find(lower(needle)) != std::string::npos;
}

// Active elements of a collection, for matching.
std::vector<const json::object*> active(const json::object& data, std::string_view collection) {
    std::vector<const json::object*> out;
    if (auto* arr = data.if_contains(collection); arr && arr->is_array())
        for (const auto& e : arr->as_array()) {
            if (!e.is_object()) continue;
            auto* a = e.as_object().if_contains("IsActive");
            if (a && a->is_bool() && !a->as_bool()) continue;
            out.push_back(&e.as_object());
        }
    return out;
}

std::string name_part(const json::object& data, const char* field) {
    if (auto* n = data.if_contains("CustomerName"); n && n->is_object()) return str(n->as_object(), field);
    return {};
}

bool has_email(const json::object& d, const std::string& email, const std::string& type) {
    for (auto* e : active(d, "Emails"))
        if (ieq(str(*e, "EmailAddress"), email) && (type.empty() || ieq(str(*e, "EmailAddressType"), type)))
            return true;
    return false;
}

bool has_phone(const json::object& d, const std::string& phone, const std::string& type) {
    for (auto* e : active(d, "PhoneNumbers"))
        if (digits(str(*e, "PhoneNumber")) == digits(phone) && (type.empty() || ieq(str(*e, "PhoneType"), type)))
            return true;
    return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        auto cut = s.find(sep, start);
        out.push_back(lower(s.substr(start, cut == std::string::npos ? std::string::npos : cut - start)));
        if (cut == std::string::npos) return out;
        start = cut + 1;
    }
}

// The reference's own examples send indexed parameters with raw brackets
// (customFields[0].Name, curl --globoff); percent-encode what RFC 3986 does not allow so
// they parse as the real service takes them.
std::string encode_lenient(std::string_view target) {
    static constexpr std::string_view allowed =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#@!$&'()*+,;=%";
    std::string out;
    for (unsigned char c : target) {
        if (allowed.find(static_cast<char>(c)) != std::string_view::npos) {
            out += static_cast<char>(c);
        } else {
            static constexpr char hex[] = "0123456789ABCDEF";
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// A request target taken apart: /Profiles/{v2|v4}/{clientId}/{Profile|Profiles}/{segments}.
// Holds the text its url view points into, so it is neither copied nor moved.
class Target {
public:
    explicit Target(std::string_view target) : encoded_(encode_lenient(target)) {
        auto parsed = urls::parse_origin_form(encoded_);
        if (!parsed) return;
        url = *parsed;
        valid = true;
        std::vector<std::string> all;
        for (auto s : url.segments()) all.emplace_back(s);
        oauth = all.size() == 2 && all[0] == "oauth" && all[1] == "token";
        api = all.size() >= 3 && all[0] == "Profiles" && (all[1] == "v2" || all[1] == "v4");
        if (!api) return;
        client_id = all[2];
        profile = all.size() >= 4 && (all[3] == "Profile" || all[3] == "Profiles");
        if (profile) segments.assign(all.begin() + 4, all.end());
    }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    bool valid = false;    // parses as an origin-form target
    bool oauth = false;    // /oauth/token
    bool api = false;      // under /Profiles/v2 or /Profiles/v4, with a clientId
    bool profile = false;  // and then under /Profile
    std::string client_id;
    std::vector<std::string> segments;  // after /Profile
    urls::url_view url;

private:
    std::string encoded_;
};

// --- what handlers share ------------------------------------------------------------------

// One API request being handled: all a handler may look at.
struct Call {
    ProfileStore& store;
    const HttpRequest& request;
    const Semantics& semantics;
    const Query& q;
    const std::vector<std::string>& seg;  // the path after /Profile
    std::string name;                     // the endpoint, for counters
    bool match_inactive = false;
};

HttpResponse fail(const Call& c, int status, const std::string& message) {
    return fail(status, message, c.name);
}
HttpResponse reply(const Call& c, const Reply& r) {
    return respond(r, c.name);
}

bool bool_param(const Query& q, const char* name, bool& out) {
    auto v = q.get(name);
    if (!v) return true;
    if (ieq(*v, "true"))
        out = true;
    else if (ieq(*v, "false"))
        out = false;
    else
        return false;
    return true;
}

std::optional<HttpResponse> require(const Call& c, std::initializer_list<const char*> names) {
    for (auto n : names)
        if (c.q.value(n).empty()) return fail(c, 400, std::string(n) + " is required");
    return std::nullopt;
}

// The alternate id the query names; both parts are required.
std::optional<AltId> query_alternate_id(const Call& c) {
    AltId alt{c.q.value("alternateIdType"), c.q.value("alternateId")};
    if (alt.type.empty() || alt.id.empty()) return std::nullopt;
    return alt;
}
const std::string kAlternateIdMissing = "alternateId and alternateIdType are required";

// The profile a path segment names, "AlternateId" (then the query names it) or a ProfileId,
// or the answer refusing the request: 400 without both query parameters, 404 unknown.
std::variant<std::int64_t, HttpResponse> named_profile(const Call& c, const std::string& segment) {
    if (segment == "AlternateId") {
        auto alt = query_alternate_id(c);
        if (!alt) return fail(c, 400, kAlternateIdMissing);
        auto id = c.store.find(*alt);
        if (!id) return fail(c, 404, "no profile with that alternate id");
        return *id;
    }
    auto id = parse_id(segment);
    if (!id) return fail(c, 404, "profile \"" + segment + "\" not found");
    return *id;
}

// The body as JSON, or the answer refusing it (415 for another type, 400 malformed).
std::optional<HttpResponse> read_json(const Call& c, json::value& out) {
    // A prefix test: application/json-patch+json passes too.
    if (!lower(c.request.content_type).starts_with("application/json"))
        return fail(c, 415, "Content-Type must be application/json");
    boost::system::error_code ec;
    out = json::parse(c.request.body, ec);
    if (ec) return fail(c, 400, "malformed JSON: " + ec.message());
    return std::nullopt;
}

// The body as an object of the schema's shape, or the answer refusing it.
std::optional<HttpResponse> read_object(const Call& c, json::object& out,
                                        const api::ObjectSchema& schema = api::profile_schema()) {
    json::value v;
    if (auto refused = read_json(c, v)) return refused;
    if (!v.is_object()) return fail(c, 400, "the body must be a JSON object");
    out = std::move(v.as_object());
    if (auto e = validate_body(out, schema)) return fail(c, 400, *e);
    return std::nullopt;
}

// --- profile writes (W1–W9) -----------------------------------------------------------------

HttpResponse create(Call& c) {
    json::object body;
    if (auto refused = read_object(c, body)) return *refused;
    return reply(c, c.store.create(std::move(body), c.semantics.accept_duplicates));
}

// W4 (POST: upsert) and W6 (PUT: replace).
HttpResponse write_by_alternate_id(Call& c) {
    auto alt = query_alternate_id(c);
    if (!alt) return fail(c, 400, kAlternateIdMissing);
    json::object body;
    if (auto refused = read_object(c, body)) return *refused;
    return reply(
        c, c.request.method == "POST" ? c.store.upsert(*alt, std::move(body)) : c.store.replace(*alt, std::move(body)));
}

// W2 (POST: merge) and W7 (PUT: replace).
HttpResponse write_by_id(Call& c) {
    auto id = parse_id(c.seg[0]);
    if (!id) return fail(c, 404, "profile \"" + c.seg[0] + "\" not found");
    json::object body;
    if (auto refused = read_object(c, body)) return *refused;
    return reply(
        c, c.request.method == "POST" ? c.store.merge(*id, std::move(body)) : c.store.replace(*id, std::move(body)));
}

HttpResponse remove_profile(Call& c) {
    auto found = named_profile(c, c.seg[0]);
    if (auto* refused = std::get_if<HttpResponse>(&found)) return *refused;
    return reply(c, c.store.remove(std::get<std::int64_t>(found)));
}

// W5: the operations wrapped in {"Operations": [...]}.
HttpResponse patch_by_alternate_id(Call& c) {
    auto alt = query_alternate_id(c);
    if (!alt) return fail(c, 400, kAlternateIdMissing);
    json::value v;
    if (auto refused = read_json(c, v)) return *refused;
    auto* ops = v.is_object() ? v.as_object().if_contains("Operations") : nullptr;
    if (!ops || !ops->is_array()) return fail(c, 400, "the body must be {\"Operations\": [...]}");
    auto id = c.store.find(*alt);
    if (!id) return fail(c, 404, "no profile with that alternate id");
    return reply(c, c.store.patch(*id, ops->as_array(), c.semantics.patch_test_status));
}

// W8: the operations as a bare array.
HttpResponse patch_by_id(Call& c) {
    auto id = parse_id(c.seg[0]);
    if (!id) return fail(c, 404, "profile \"" + c.seg[0] + "\" not found");
    json::value v;
    if (auto refused = read_json(c, v)) return *refused;
    if (!v.is_array()) return fail(c, 400, "the body must be a JSON array of operations");
    return reply(c, c.store.patch(*id, v.as_array(), c.semantics.patch_test_status));
}

HttpResponse archive(Call& c) {
    auto id = parse_id(c.seg[1]);
    if (!id) return fail(c, 404, "profile not found");
    json::object body;
    if (auto refused = read_object(c, body, api::archive_schema())) return *refused;
    return reply(c, c.store.archive(*id, body));
}

// --- profile reads (R1, R2) and history (H1–H5) ------------------------------------------------

HttpResponse read_profile(Call& c) {
    auto found = named_profile(c, c.seg[0]);
    if (auto* refused = std::get_if<HttpResponse>(&found)) return *refused;
    return reply(c, c.store.get(std::get<std::int64_t>(found), c.match_inactive));
}

HttpResponse history(Call& c) {
    static const std::map<std::string, HistoryKind> kinds{{"Consents", HistoryKind::Consents},
                                                          {"ContactElements", HistoryKind::ContactElements},
                                                          {"CustomFields", HistoryKind::CustomFields},
                                                          {"Preferences", HistoryKind::Preferences},
                                                          {"StandardFields", HistoryKind::StandardFields}};
    auto found = named_profile(c, c.seg[2]);
    if (auto* refused = std::get_if<HttpResponse>(&found)) return *refused;
    return reply(c, c.store.history(std::get<std::int64_t>(found), kinds.at(c.seg[1]), c.q.value("filterId")));
}

// --- searches (S1–S14) ----------------------------------------------------------------------

HttpResponse search(Call& c, std::initializer_list<const char*> required,
                    const std::function<bool(const json::object&)>& match) {
    if (auto refused = require(c, required)) return *refused;
    return reply(c, c.store.search(match, 50));
}

HttpResponse search_address(Call& c) {
    const Query& q = c.q;
    bool partial_address = false, partial_name = false;
    if (!bool_param(q, "partialAddress1Match", partial_address) || !bool_param(q, "partialNameMatch", partial_name))
        return fail(c, 400, "partialAddress1Match and partialNameMatch must be true or false");
    return search(c, {"city", "stateProvince"}, [&](const json::object& d) {
        auto name_ok = [&](const char* param, const char* field) {
            auto want = q.value(param);
            if (want.empty()) return true;
            auto have = name_part(d, field);
            return partial_name ? contains_i(have, want) : ieq(have, want);
        };
        if (!name_ok("firstName", "FirstName") || !name_ok("middleName", "MiddleName") ||
            !name_ok("lastName", "LastName"))
            return false;
        for (auto* a : active(d, "Addresses")) {
            if (!ieq(str(*a, "City"), q.value("city")) || !ieq(str(*a, "StateProvince"), q.value("stateProvince")))
                continue;
            auto a1 = q.value("address1");
            if (!a1.empty() && !(partial_address ? contains_i(str(*a, "Address1"), a1) : ieq(str(*a, "Address1"), a1)))
                continue;
            auto eq_opt = [&](const char* param, const char* field) {
                auto want = q.value(param);
                return want.empty() || ieq(str(*a, field), want);
            };
            if (eq_opt("address2", "Address2") && eq_opt("postalCode", "PostalCode") &&
                eq_opt("addressType", "AddressType"))
                return true;
        }
        return false;
    });
}

// S2 (Equals) and S3 (SelectList: Equals, All of, Any of).
HttpResponse search_custom_fields(Call& c) {
    bool select = c.seg.size() == 2;
    auto criteria = c.q.indexed("customFields", {"Name", "Value", "OperatorId"});
    if (criteria.empty()) return fail(c, 400, "customFields[0].Name and customFields[0].Value are required");
    for (auto& cf : criteria) {
        if (cf["Name"].empty()) return fail(c, 400, "every customFields[i] needs a Name");
        if (select && cf["OperatorId"] != "1" && cf["OperatorId"] != "2" && cf["OperatorId"] != "3")
            return fail(c, 400, "customFields[i].OperatorId must be 1 (Equals), 2 (All of) or 3 (Any of)");
    }
    return search(c, {}, [&](const json::object& d) {
        for (auto& cf : criteria) {
            bool ok = false;
            for (auto* f : active(d, "CustomFields")) {
                if (!ieq(str(*f, "Name"), cf["Name"])) continue;
                auto have = str(*f, "Value");
                if (!select || cf["OperatorId"] == "1") {
                    ok = ieq(have, cf["Value"]);
                } else {
                    auto mine = split(have, ':');
                    auto want = split(cf["Value"], ':');
                    auto in = [&](const std::string& w) {
                        return std::find(mine.begin(), mine.end(), w) != mine.end();
                    };
                    ok = cf["OperatorId"] == "2" ? std::all_of(want.begin(), want.end(), in)
                                                 : std::any_of(want.begin(), want.end(), in);
                }
                if (ok) break;
            }
            if (!ok) return false;
        }
        return true;
    });
}

HttpResponse search_email(Call& c) {
    return search(c, {"emailAddress"}, [&](const json::object& d) {
        return has_email(d, c.q.value("emailAddress"), c.q.value("emailType"));
    });
}

// S5 (exact) and S6 (Name/Partial: substrings).
HttpResponse search_name(Call& c) {
    bool partial = c.seg.size() == 2;
    return search(c, {"lastName"}, [&](const json::object& d) {
        for (auto [param, field] : {std::pair{"firstName", "FirstName"}, std::pair{"middleName", "MiddleName"},
                                    std::pair{"lastName", "LastName"}}) {
            auto want = c.q.value(param);
            if (want.empty()) continue;
            auto have = name_part(d, field);
            if (partial ? !contains_i(have, want) : !ieq(have, want)) return false;
        }
        return true;
    });
}

HttpResponse search_phone(Call& c) {
    return search(c, {"phoneNumber"}, [&](const json::object& d) {
        return has_phone(d, c.q.value("phoneNumber"), c.q.value("phoneType"));
    });
}

HttpResponse search_attributes(Call& c) {
    auto criteria = c.q.indexed("attributes", {"Key", "Value"});
    if (criteria.empty()) return fail(c, 400, "attributes[0].Key and attributes[0].Value are required");
    return search(c, {}, [&](const json::object& d) {
        std::vector<const json::object*> attrs;
        auto collect = [&](const json::object& owner, const char* prefs) {
            for (auto* p : active(owner, prefs))
                for (auto* a : active(*p, "PreferenceAttributes")) attrs.push_back(a);
        };
        collect(d, "ProfilePreferences");
        for (auto [contact, prefs] :
             {std::pair{"Emails", "EmailPreferences"}, std::pair{"PhoneNumbers", "PhonePreferences"},
              std::pair{"Addresses", "AddressPreferences"}})
            for (auto* e : active(d, contact)) collect(*e, prefs);
        for (auto& cr : criteria) {
            bool ok = std::any_of(attrs.begin(), attrs.end(), [&](const json::object* a) {
                return ieq(str(*a, "Key"), cr["Key"]) && ieq(str(*a, "Value"), cr["Value"]);
            });
            if (!ok) return false;
        }
        return true;
    });
}

HttpResponse search_tags(Call& c) {
    auto tags = c.q.indexed("tag", {});
    if (tags.empty()) return fail(c, 400, "tag[0] is required");
    bool exact = true, multiple = false;
    if (!bool_param(c.q, "exactMatch", exact) || !bool_param(c.q, "multipleProfiles", multiple))
        return fail(c, 400, "exactMatch and multipleProfiles must be true or false");
    auto found = search(c, {}, [&](const json::object& d) {
        auto mine = active(d, "ProfileTags");
        auto has = [&](const std::map<std::string, std::string>& t) {
            return std::any_of(mine.begin(), mine.end(),
                               [&](const json::object* tag) { return ieq(str(*tag, "Name"), t.at("")); });
        };
        return exact ? std::all_of(tags.begin(), tags.end(), has) : std::any_of(tags.begin(), tags.end(), has);
    });
    if (found.status == 200 && !multiple) {
        auto arr = json::parse(found.body).as_array();
        if (arr.size() > 1) arr.resize(1);
        found.body = json::serialize(arr);
    }
    return found;
}

// Group searches (S10–S14): every profile sharing a group of `groupType` with the primary
// profiles `primary` picks.
HttpResponse search_group(Call& c, std::initializer_list<const char*> required,
                          const std::function<bool(std::int64_t, const json::object&)>& primary) {
    if (auto refused = require(c, {"groupType"})) return *refused;
    if (auto refused = require(c, required)) return *refused;
    return reply(c, c.store.group_search(primary, c.q.value("groupType")));
}

HttpResponse search_group_by_alternate_id(Call& c) {
    if (auto refused = require(c, {"groupType"})) return *refused;
    auto found = named_profile(c, "AlternateId");
    if (auto* refused = std::get_if<HttpResponse>(&found)) return *refused;
    AltId alt = *query_alternate_id(c);
    return search_group(c, {}, [&](std::int64_t, const json::object& d) {
        for (auto* a : active(d, "AlternateIds"))
            if (str(*a, "AlternateIdType") == alt.type && str(*a, "AlternateId") == alt.id) return true;
        return false;
    });
}

HttpResponse search_group_by_email(Call& c) {
    return search_group(c, {"emailAddress"}, [&](std::int64_t, const json::object& d) {
        return has_email(d, c.q.value("emailAddress"), c.q.value("emailType"));
    });
}

HttpResponse search_group_by_name(Call& c) {
    return search_group(c, {"groupName"}, [&](std::int64_t, const json::object& d) {
        for (auto* g : active(d, "Groups"))
            if (str(*g, "GroupType") == c.q.value("groupType") && str(*g, "GroupName") == c.q.value("groupName"))
                return true;
        return false;
    });
}

HttpResponse search_group_by_phone(Call& c) {
    return search_group(c, {"phoneNumber"}, [&](std::int64_t, const json::object& d) {
        return has_phone(d, c.q.value("phoneNumber"), c.q.value("phoneType"));
    });
}

HttpResponse search_group_by_primary(Call& c) {
    if (auto refused = require(c, {"groupType"})) return *refused;
    auto id = parse_id(c.seg[2]);
    if (!id) return fail(c, 404, "profile not found");
    return search_group(c, {}, [pid = *id](std::int64_t candidate, const json::object&) { return candidate == pid; });
}

HttpResponse not_allowed(Call& c) {
    return fail(c, 405, c.request.method + " is not allowed here");
}

// --- the routing table ----------------------------------------------------------------------

using Handler = HttpResponse (*)(Call&);

struct Route {
    std::string_view method;   // "*": every method no other row of the same pattern takes
    std::string_view pattern;  // the path after /Profile; "{...}" matches any one segment
    std::string_view name;     // the endpoint, as counted in /__admin/stats
    Handler handler;
};

// The first row whose pattern matches the path names the resource, so literal segments come
// before placeholders ("Email" before "{id}"); then the resource's rows are picked by method,
// and a method none of them takes answers 405 under the resource's first name.
constexpr Route kRoutes[] = {
    {"POST", "", "W1 create", create},
    {"GET", "AlternateId", "R1 get-by-alternate-id", read_profile},
    {"POST", "AlternateId", "W4 upsert", write_by_alternate_id},
    {"PATCH", "AlternateId", "W5 patch-by-alternate-id", patch_by_alternate_id},
    {"PUT", "AlternateId", "W6 replace-by-alternate-id", write_by_alternate_id},
    {"*", "AlternateId", "alternate-id", not_allowed},
    {"PUT", "Preferences/{profileId}/Archive", "W9 archive", archive},
    {"GET", "Address", "S1 address", search_address},
    {"GET", "CustomFields", "S2 custom-fields", search_custom_fields},
    {"GET", "CustomFields/SelectList", "S3 custom-fields-select-list", search_custom_fields},
    {"GET", "Email", "S4 email", search_email},
    {"GET", "Name", "S5 name", search_name},
    {"GET", "Name/Partial", "S6 partial-name", search_name},
    {"GET", "Phone", "S7 phone", search_phone},
    {"GET", "Attributes", "S8 attributes", search_attributes},
    {"GET", "Tags", "S9 tags", search_tags},
    {"GET", "Groups/AlternateId", "S group AlternateId", search_group_by_alternate_id},
    {"GET", "Groups/Email", "S group Email", search_group_by_email},
    {"GET", "Groups", "S group name", search_group_by_name},
    {"GET", "Groups/Phone", "S group Phone", search_group_by_phone},
    {"GET", "Groups/Primary/{profileId}", "S group Primary", search_group_by_primary},
    {"GET", "History/Consents/{profile}", "H Consents", history},
    {"GET", "History/ContactElements/{profile}", "H ContactElements", history},
    {"GET", "History/CustomFields/{profile}", "H CustomFields", history},
    {"GET", "History/Preferences/{profile}", "H Preferences", history},
    {"GET", "History/StandardFields/{profile}", "H StandardFields", history},
    {"GET", "{profileId}", "R2 get", read_profile},
    {"POST", "{profileId}", "W2 update", write_by_id},
    {"DELETE", "{profileId}", "W3 delete", remove_profile},
    {"PUT", "{profileId}", "W7 replace", write_by_id},
    {"PATCH", "{profileId}", "W8 patch", patch_by_id},
    {"*", "{profileId}", "profile", not_allowed},
};

bool matches(std::string_view pattern, const std::vector<std::string>& seg) {
    if (pattern.empty()) return seg.empty();
    for (std::size_t i = 0;; ++i) {
        auto cut = pattern.find('/');
        auto part = pattern.substr(0, cut);
        if (i == seg.size() || (!part.starts_with('{') && part != seg[i])) return false;
        if (cut == std::string_view::npos) return i + 1 == seg.size();
        pattern.remove_prefix(cut + 1);
    }
}

struct Match {
    std::string_view name;
    Handler handler;
};

std::optional<Match> find_route(std::string_view method, const std::vector<std::string>& seg) {
    const Route* resource = nullptr;
    for (const auto& r : kRoutes) {
        if (resource ? r.pattern != resource->pattern : !matches(r.pattern, seg)) continue;
        if (!resource) resource = &r;
        if (r.method == method || r.method == "*") return Match{r.name, r.handler};
    }
    if (!resource) return std::nullopt;
    return Match{resource->name, not_allowed};
}

}  // namespace

EmulatorApi::EmulatorApi(ProfileStore& store, ApiOptions options, Clock clock)
    : store_(store), options_(std::move(options)), clock_(std::move(clock)) {}

bool EmulatorApi::authorized(const std::string& header) {
    if (!options_.oauth) return header == options_.token || header == "Bearer " + options_.token;
    if (!header.starts_with("Bearer ")) return false;
    std::lock_guard lock(tokens_mutex_);
    auto it = tokens_.find(header.substr(7));
    return it != tokens_.end() && clock_() < it->second;
}

HttpResponse EmulatorApi::token_endpoint(const HttpRequest& request) {
    if (!options_.oauth) return fail(404, "OAuth is not enabled (start the emulator with --oauth)", "oauth");
    if (request.method != "POST") return fail(405, "use POST", "oauth");
    // application/x-www-form-urlencoded: grant_type=client_credentials&client_secret=...
    auto form = urls::parse_query(request.body);
    if (!form) return fail(400, "malformed form body", "oauth");
    std::string grant, secret;
    // Decoded (a secret with '&', '%' or '+' is compared as the client meant it), with '+' as a
    // space, as a form is read by a real token endpoint.
    for (auto p : urls::params_view(request.body, urls::encoding_opts(true))) {
        if (p.key == "grant_type") grant = p.value;
        if (p.key == "client_secret") secret = p.value;
    }
    if (grant != "client_credentials") return fail(400, "grant_type must be client_credentials", "oauth");
    if (secret != options_.token) return fail(401, "invalid client_secret", "oauth");
    std::string token;
    {
        std::lock_guard lock(tokens_mutex_);
        token = "emu-" + std::to_string(++token_counter_) + "-" +
                std::to_string(clock_().time_since_epoch().count() % 1000003);
        tokens_[token] = clock_() + options_.token_ttl;
    }
    return respond(Reply{200, json::object{{"access_token", token},
                                           {"token_type", "Bearer"},
                                           {"expires_in", options_.token_ttl.count()}}},
                   "oauth");
}

HttpResponse EmulatorApi::handle(const HttpRequest& request, const Semantics& semantics) {
    store_.set_stamp_elements(semantics.stamp_elements);
    Target target(request.target);
    if (!target.valid) return fail(400, "malformed request target", "bad-target");
    if (target.oauth) return token_endpoint(request);
    if (!target.api) return fail(404, "no such resource (the API lives under /Profiles/v2/{clientId})", "not-found");
    if (!authorized(request.authorization)) return fail(401, "Authorization is missing or wrong", "auth");
    if (target.client_id != options_.client_id)
        return fail(404, "unknown clientId \"" + target.client_id + "\"", "client");
    if (!target.profile) return fail(404, "no such resource", "not-found");

    Query q(target.url);
    // Accepted by every endpoint; `implied` has no effect (no preference propagation).
    bool implied = false, match_inactive = false;
    if (!bool_param(q, "implied", implied)) return fail(400, "implied must be true or false", "bad-param");
    if (!bool_param(q, "matchInactive", match_inactive))
        return fail(400, "matchInactive must be true or false", "bad-param");

    auto route = find_route(request.method, target.segments);
    if (!route) return fail(404, "no such resource", "not-found");
    Call call{store_, request, semantics, q, target.segments, std::string(route->name), match_inactive};
    return route->handler(call);
}

RequestInfo EmulatorApi::describe(const HttpRequest& request) const {
    RequestInfo info;
    Target target(request.target);
    if (!target.valid) return {"bad-target", {}};
    if (target.oauth) return {"oauth", {}};
    auto route = target.profile ? find_route(request.method, target.segments) : std::nullopt;
    info.endpoint = route ? std::string(route->name) : "not-found";
    Query q(target.url);
    info.alternate_id = {q.value("alternateIdType"), q.value("alternateId")};
    if (info.alternate_id.id.empty() && !request.body.empty()) {
        // A create names its alternate ids in the body; the first is the one it answers with.
        boost::system::error_code ec;
        auto body = json::parse(request.body, ec);
        auto* ids = !ec && body.is_object() ? body.as_object().if_contains("AlternateIds") : nullptr;
        if (ids && ids->is_array() && !ids->as_array().empty() && ids->as_array()[0].is_object()) {
            const auto& first = ids->as_array()[0].as_object();
            info.alternate_id = {str(first, "AlternateIdType"), str(first, "AlternateId")};
        }
    }
    return info;
}

}  // namespace prefsync::emulator
