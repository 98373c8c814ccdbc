#include "daemon/emulator/emulator_api.hpp"

#include <boost/url.hpp>
#include <charconv>

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
        for (auto p : url.params()) values_.emplace(lower(p.key), p.has_value ? std::string(p.value) : "");
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

bool ieq(std::string_view a, std::string_view b) { return lower(a) == lower(b); }
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
        if (ieq(str(*e, "EmailAddress"), email) && (type.empty() || ieq(str(*e, "EmailAddressType"), type))) return true;
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
    for (auto p : *form) {
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

HttpResponse EmulatorApi::handle(const HttpRequest& request) {
    std::string target = encode_lenient(request.target);
    auto parsed = urls::parse_origin_form(target);
    if (!parsed) return fail(400, "malformed request target", "bad-target");
    urls::url_view url = *parsed;
    std::vector<std::string> seg;
    for (auto s : url.segments()) seg.emplace_back(s);

    if (seg.size() == 2 && seg[0] == "oauth" && seg[1] == "token") return token_endpoint(request);
    if (seg.size() < 3 || seg[0] != "Profiles" || (seg[1] != "v2" && seg[1] != "v4"))
        return fail(404, "no such resource (the API lives under /Profiles/v2/{clientId})", "not-found");
    if (!authorized(request.authorization))
        return fail(401, "Authorization is missing or wrong", "auth");
    if (seg[2] != options_.client_id) return fail(404, "unknown clientId \"" + seg[2] + "\"", "client");
    seg.erase(seg.begin(), seg.begin() + 3);
    if (seg.empty() || (seg[0] != "Profile" && seg[0] != "Profiles")) return fail(404, "no such resource", "not-found");
    seg.erase(seg.begin());

    const std::string& m = request.method;
    Query q(url);
    bool has_body = m == "POST" || m == "PUT" || m == "PATCH";

    // Body: JSON, checked against the schema it must follow.
    auto read_body = [&](json::value& out, std::string& problem, int& status) {
        auto ct = lower(request.content_type);
        if (!ct.starts_with("application/json") && !ct.starts_with("application/json-patch+json")) {
            status = 415;
            problem = "Content-Type must be application/json";
            return false;
        }
        boost::system::error_code ec;
        out = json::parse(request.body, ec);
        if (ec) {
            status = 400;
            problem = "malformed JSON: " + ec.message();
            return false;
        }
        return true;
    };
    auto profile_body = [&](json::object& body, std::string& problem, int& status,
                            const api::ObjectSchema& schema = api::profile_schema()) {
        json::value v;
        if (!read_body(v, problem, status)) return false;
        if (!v.is_object()) {
            status = 400;
            problem = "the body must be a JSON object";
            return false;
        }
        body = std::move(v.as_object());
        if (auto e = validate_body(body, schema)) {
            status = 400;
            problem = *e;
            return false;
        }
        return true;
    };
    auto bool_param = [&](const char* name, bool& out) {
        auto v = q.get(name);
        if (!v) return true;
        if (ieq(*v, "true")) out = true;
        else if (ieq(*v, "false")) out = false;
        else return false;
        return true;
    };
    bool implied = false, match_inactive = false;
    if (!bool_param("implied", implied)) return fail(400, "implied must be true or false", "bad-param");
    if (!bool_param("matchInactive", match_inactive)) return fail(400, "matchInactive must be true or false", "bad-param");

    auto alt_param = [&](AltId& alt) {
        alt.type = q.value("alternateIdType");
        alt.id = q.value("alternateId");
        return !alt.type.empty() && !alt.id.empty();
    };
    const std::string alt_missing = "alternateId and alternateIdType are required";
    auto method_not_allowed = [&](const char* endpoint) { return fail(405, m + " is not allowed here", endpoint); };

    // --- writes and reads of one profile ---
    if (seg.empty()) {
        if (m != "POST") return method_not_allowed("W1 create");
        json::object body;
        std::string problem;
        int status = 400;
        if (!profile_body(body, problem, status)) return fail(status, problem, "W1 create");
        return respond(store_.create(std::move(body)), "W1 create");
    }
    if (seg.size() == 1 && seg[0] == "AlternateId") {
        AltId alt;
        const char* name = m == "GET" ? "R1 get-by-alternate-id" : m == "POST" ? "W4 upsert"
                         : m == "PATCH" ? "W5 patch-by-alternate-id" : m == "PUT" ? "W6 replace-by-alternate-id"
                                                                     : "alternate-id";
        if (!alt_param(alt)) return fail(400, alt_missing, name);
        if (m == "GET") {
            auto id = store_.find(alt);
            if (!id) return fail(404, "no profile with that alternate id", name);
            return respond(store_.get(*id, match_inactive), name);
        }
        if (!has_body) return method_not_allowed(name);
        std::string problem;
        int status = 400;
        if (m == "PATCH") {
            json::value v;
            if (!read_body(v, problem, status)) return fail(status, problem, name);
            auto* ops = v.is_object() ? v.as_object().if_contains("Operations") : nullptr;
            if (!ops || !ops->is_array()) return fail(400, "the body must be {\"Operations\": [...]}", name);
            auto id = store_.find(alt);
            if (!id) return fail(404, "no profile with that alternate id", name);
            return respond(store_.patch(*id, ops->as_array()), name);
        }
        json::object body;
        if (!profile_body(body, problem, status)) return fail(status, problem, name);
        return respond(m == "POST" ? store_.upsert(alt, std::move(body)) : store_.replace(alt, std::move(body)), name);
    }

    // --- history ---
    if (seg[0] == "History" && seg.size() == 3) {
        static const std::map<std::string, HistoryKind> kinds{
            {"Consents", HistoryKind::Consents}, {"ContactElements", HistoryKind::ContactElements},
            {"CustomFields", HistoryKind::CustomFields}, {"Preferences", HistoryKind::Preferences},
            {"StandardFields", HistoryKind::StandardFields}};
        auto kind = kinds.find(seg[1]);
        if (kind == kinds.end()) return fail(404, "no such history", "not-found");
        std::string name = "H " + seg[1];
        if (m != "GET") return method_not_allowed(name.c_str());
        std::optional<std::int64_t> id;
        if (seg[2] == "AlternateId") {
            AltId alt;
            if (!alt_param(alt)) return fail(400, alt_missing, name);
            id = store_.find(alt);
        } else {
            id = parse_id(seg[2]);
        }
        if (!id) return fail(404, "profile not found", name);
        auto reply = store_.history(*id, kind->second, q.value("filterId"));
        // History is computed on request and documented as able to answer a temporary 503.
        return respond(reply, name);
    }

    // --- archive preferences ---
    if (seg[0] == "Preferences" && seg.size() == 3 && seg[2] == "Archive") {
        if (m != "PUT") return method_not_allowed("W9 archive");
        auto id = parse_id(seg[1]);
        if (!id) return fail(404, "profile not found", "W9 archive");
        json::object body;
        std::string problem;
        int status = 400;
        if (!profile_body(body, problem, status, api::archive_schema())) return fail(status, problem, "W9 archive");
        return respond(store_.archive(*id, body), "W9 archive");
    }

    // --- searches ---
    auto search = [&](const char* name, std::initializer_list<const char*> required,
                      std::function<bool(const json::object&)> match) -> HttpResponse {
        if (m != "GET") return method_not_allowed(name);
        for (auto r : required)
            if (q.value(r).empty()) return fail(400, std::string(r) + " is required", name);
        return respond(store_.search(match, 50), name);
    };
    std::string path;
    for (auto& s : seg) path += (path.empty() ? "" : "/") + s;
    if (path == "Address") {
        bool partial_address = false, partial_name = false;
        if (!bool_param("partialAddress1Match", partial_address) || !bool_param("partialNameMatch", partial_name))
            return fail(400, "partialAddress1Match and partialNameMatch must be true or false", "S1 address");
        return search("S1 address", {"city", "stateProvince"}, [&](const json::object& d) {
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
    if (path == "CustomFields" || path == "CustomFields/SelectList") {
        bool select = path != "CustomFields";
        const char* name = select ? "S3 custom-fields-select-list" : "S2 custom-fields";
        auto criteria = q.indexed("customFields", {"Name", "Value", "OperatorId"});
        if (criteria.empty()) return fail(400, "customFields[0].Name and customFields[0].Value are required", name);
        for (auto& c : criteria) {
            if (c["Name"].empty()) return fail(400, "every customFields[i] needs a Name", name);
            if (select && c["OperatorId"] != "1" && c["OperatorId"] != "2" && c["OperatorId"] != "3")
                return fail(400, "customFields[i].OperatorId must be 1 (Equals), 2 (All of) or 3 (Any of)", name);
        }
        return search(name, {}, [&, select](const json::object& d) {
            for (auto& c : criteria) {
                bool ok = false;
                for (auto* f : active(d, "CustomFields")) {
                    if (!ieq(str(*f, "Name"), c["Name"])) continue;
                    auto have = str(*f, "Value");
                    if (!select || c["OperatorId"] == "1") {
                        ok = ieq(have, c["Value"]);
                    } else {
                        auto mine = split(have, ':');
                        auto want = split(c["Value"], ':');
                        auto in = [&](const std::string& w) { return std::find(mine.begin(), mine.end(), w) != mine.end(); };
                        ok = c["OperatorId"] == "2" ? std::all_of(want.begin(), want.end(), in)
                                                    : std::any_of(want.begin(), want.end(), in);
                    }
                    if (ok) break;
                }
                if (!ok) return false;
            }
            return true;
        });
    }
    if (path == "Email")
        return search("S4 email", {"emailAddress"}, [&](const json::object& d) {
            return has_email(d, q.value("emailAddress"), q.value("emailType"));
        });
    if (path == "Name" || path == "Name/Partial") {
        bool partial = path != "Name";
        return search(partial ? "S6 partial-name" : "S5 name", {"lastName"}, [&, partial](const json::object& d) {
            for (auto [param, field] : {std::pair{"firstName", "FirstName"}, std::pair{"middleName", "MiddleName"},
                                        std::pair{"lastName", "LastName"}}) {
                auto want = q.value(param);
                if (want.empty()) continue;
                auto have = name_part(d, field);
                if (partial ? !contains_i(have, want) : !ieq(have, want)) return false;
            }
            return true;
        });
    }
    if (path == "Phone")
        return search("S7 phone", {"phoneNumber"}, [&](const json::object& d) {
            return has_phone(d, q.value("phoneNumber"), q.value("phoneType"));
        });
    if (path == "Attributes") {
        auto criteria = q.indexed("attributes", {"Key", "Value"});
        if (criteria.empty()) return fail(400, "attributes[0].Key and attributes[0].Value are required", "S8 attributes");
        return search("S8 attributes", {}, [&](const json::object& d) {
            std::vector<const json::object*> attrs;
            auto collect = [&](const json::object& owner, const char* prefs) {
                for (auto* p : active(owner, prefs))
                    for (auto* a : active(*p, "PreferenceAttributes")) attrs.push_back(a);
            };
            collect(d, "ProfilePreferences");
            for (auto [c, p] : {std::pair{"Emails", "EmailPreferences"}, std::pair{"PhoneNumbers", "PhonePreferences"},
                                std::pair{"Addresses", "AddressPreferences"}})
                for (auto* e : active(d, c)) collect(*e, p);
            for (auto& c : criteria) {
                bool ok = std::any_of(attrs.begin(), attrs.end(), [&](const json::object* a) {
                    return ieq(str(*a, "Key"), c["Key"]) && ieq(str(*a, "Value"), c["Value"]);
                });
                if (!ok) return false;
            }
            return true;
        });
    }
    if (path == "Tags") {
        auto tags = q.indexed("tag", {});
        if (tags.empty()) return fail(400, "tag[0] is required", "S9 tags");
        bool exact = true, multiple = false;
        if (!bool_param("exactMatch", exact) || !bool_param("multipleProfiles", multiple))
            return fail(400, "exactMatch and multipleProfiles must be true or false", "S9 tags");
        auto reply = search("S9 tags", {}, [&, exact](const json::object& d) {
            auto mine = active(d, "ProfileTags");
            auto has = [&](const std::map<std::string, std::string>& t) {
                return std::any_of(mine.begin(), mine.end(), [&](const json::object* tag) {
                    return ieq(str(*tag, "Name"), t.at(""));
                });
            };
            return exact ? std::all_of(tags.begin(), tags.end(), has) : std::any_of(tags.begin(), tags.end(), has);
        });
        if (reply.status == 200 && !multiple) {
            auto arr = json::parse(reply.body).as_array();
            if (arr.size() > 1) arr.resize(1);
            reply.body = json::serialize(arr);
        }
        return reply;
    }
    if (seg[0] == "Groups") {
        auto group_type = q.value("groupType");
        std::string name = "S group " + (seg.size() > 1 ? seg[1] : std::string("name"));
        if (m != "GET") return method_not_allowed(name.c_str());
        if (group_type.empty()) return fail(400, "groupType is required", name);
        std::function<bool(std::int64_t, const json::object&)> primary;
        if (seg.size() == 2 && seg[1] == "AlternateId") {
            AltId alt;
            if (!alt_param(alt)) return fail(400, alt_missing, name);
            auto id = store_.find(alt);
            if (!id) return fail(404, "no profile with that alternate id", name);
            primary = [alt](std::int64_t, const json::object& d) {
                for (auto* a : active(d, "AlternateIds"))
                    if (str(*a, "AlternateIdType") == alt.type && str(*a, "AlternateId") == alt.id) return true;
                return false;
            };
        } else if (seg.size() == 2 && seg[1] == "Email") {
            if (q.value("emailAddress").empty()) return fail(400, "emailAddress is required", name);
            primary = [&](std::int64_t, const json::object& d) { return has_email(d, q.value("emailAddress"), q.value("emailType")); };
        } else if (seg.size() == 2 && seg[1] == "Phone") {
            if (q.value("phoneNumber").empty()) return fail(400, "phoneNumber is required", name);
            primary = [&](std::int64_t, const json::object& d) { return has_phone(d, q.value("phoneNumber"), q.value("phoneType")); };
        } else if (seg.size() == 1) {
            if (q.value("groupName").empty()) return fail(400, "groupName is required", name);
            primary = [&](std::int64_t, const json::object& d) {
                for (auto* g : active(d, "Groups"))
                    if (str(*g, "GroupType") == group_type && str(*g, "GroupName") == q.value("groupName")) return true;
                return false;
            };
        } else if (seg.size() == 3 && seg[1] == "Primary") {
            auto id = parse_id(seg[2]);
            if (!id) return fail(404, "profile not found", name);
            primary = [pid = *id](std::int64_t candidate, const json::object&) { return candidate == pid; };
        } else {
            return fail(404, "no such resource", "not-found");
        }
        return respond(store_.group_search(primary, group_type), name);
    }

    // --- one profile by id ---
    if (seg.size() == 1) {
        auto id = parse_id(seg[0]);
        const char* name = m == "GET" ? "R2 get" : m == "POST" ? "W2 update" : m == "PUT" ? "W7 replace"
                         : m == "PATCH" ? "W8 patch" : m == "DELETE" ? "W3 delete" : "profile";
        if (!id) return fail(404, "profile \"" + seg[0] + "\" not found", name);
        if (m == "GET") return respond(store_.get(*id, match_inactive), name);
        if (m == "DELETE") return respond(store_.remove(*id), name);
        std::string problem;
        int status = 400;
        if (m == "PATCH") {
            json::value v;
            if (!read_body(v, problem, status)) return fail(status, problem, name);
            if (!v.is_array()) return fail(400, "the body must be a JSON array of operations", name);
            return respond(store_.patch(*id, v.as_array()), name);
        }
        if (!has_body) return method_not_allowed(name);
        json::object body;
        if (!profile_body(body, problem, status)) return fail(status, problem, name);
        return respond(m == "POST" ? store_.merge(*id, std::move(body)) : store_.replace(*id, std::move(body)), name);
    }
    return fail(404, "no such resource", "not-found");
}

}  // namespace prefsync::emulator
