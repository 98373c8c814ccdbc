#include "config/schema/config_schema.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "config/config_keys.hpp"
#include "config/connector_types.hpp"
#include "daemon/api/profile_schema.hpp"

namespace prefsync::config {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

const json::object& schema() {
    static const json::value parsed = json::parse(config_json_schema());
    return parsed.as_object();
}

const json::object& definition(std::string_view name) {
    return schema().at("definitions").as_object().at(name).as_object();
}

TEST(ConfigSchema, IsDraft7AndDeterministic) {
    EXPECT_EQ(schema().at("$schema"), "http://json-schema.org/draft-07/schema#");
    EXPECT_EQ(config_json_schema(), config_json_schema());
    EXPECT_TRUE(config_json_schema().ends_with("}\n"));
}

TEST(ConfigSchema, EveryTableKeyIsAPropertyOfItsDefinitionWithTypeDefaultAndDescription) {
    const auto& http = definition("http");
    EXPECT_EQ(http.at("additionalProperties"), false) << "unknown keys are errors, as in check-config";
    const auto& connections = http.at("properties").as_object().at("connections").as_object();
    EXPECT_EQ(connections.at("minimum"), 1);
    EXPECT_EQ(connections.at("maximum"), 1024);
    EXPECT_EQ(connections.at("default"), 16);
    EXPECT_EQ(connections.at("description").as_string(), http_keys().key("connections").description);
    for (const auto* t : {&api_keys(), &http_keys(), &rate_limit_keys(), &retry_keys(), &journal_keys(), &log_keys(),
                          &daemon_keys(), &identity_keys(), &pull_keys()}) {
        const auto& properties = definition(t->id).at("properties").as_object();
        for (const auto& k : t->keys) EXPECT_TRUE(properties.contains(k.name)) << t->id << "." << k.name;
    }
    const auto& api = definition("api");
    EXPECT_EQ(api.at("required"), (json::array{"base_url", "client_id"}));
}

TEST(ConfigSchema, EveryConnectorTypeIsABranchOnItsType) {
    for (auto [what, count] : {std::pair{"source", source_types().size()}, std::pair{"sink", sink_types().size()}}) {
        const auto& branches = definition(what).at("allOf").as_array();
        ASSERT_EQ(branches.size(), count) << what;
        for (const auto& b : branches) {
            auto type = json::value_to<std::string>(b.at("if").at("properties").at("type").at("const"));
            EXPECT_EQ(b.at("then").at("$ref").as_string(), "#/definitions/" + std::string(what) + "." + type);
            EXPECT_EQ(definition(std::string(what) + "." + type).at("additionalProperties"), false)
                << "a key of another type is an error";
        }
    }
}

TEST(ConfigSchema, TheMappingHasEveryWritableProfileFieldAndDottedPathsIntoObjects) {
    const auto& properties = definition("mapping.Profile").at("properties").as_object();
    for (const auto& f : api::profile_schema().fields) EXPECT_EQ(properties.contains(f.name), !f.read_only) << f.name;
    EXPECT_TRUE(properties.contains("CustomerName.FirstName"));
    EXPECT_FALSE(properties.contains("Edited.CreateDate")) << "read-only objects are not reached into";
    EXPECT_EQ(properties.at("Emails").at("$ref"), "#/definitions/list.Email");
    EXPECT_EQ(properties.at("IsActive").at("$ref"), "#/definitions/value.boolean");
    const auto& email = definition("mapping.Email").at("properties").as_object();
    EXPECT_FALSE(email.contains("Edited"));
    EXPECT_TRUE(email.contains("EmailPreferences"));
    const auto& archive = definition("mapping.ArchivePreferences").at("properties").as_object();
    EXPECT_TRUE(archive.contains("GlobalDeactivate"));
    // Name → value lists (CustomFields) take the map form; others do not.
    EXPECT_EQ(definition("list.CustomField").at("anyOf").as_array().size(), 3u);
    EXPECT_EQ(definition("list.Email").at("anyOf").as_array().size(), 2u);
}

TEST(ConfigSchema, TypedValuesAlsoAcceptInterpolationAndTheirTextForms) {
    const auto& http = definition("http").at("properties").as_object();
    auto matches = [](const json::value& property, const std::string& text) {
        std::regex pattern(json::value_to<std::string>(property.at("pattern")), std::regex::ECMAScript);
        return std::regex_search(text, pattern);
    };
    EXPECT_TRUE(matches(http.at("connections"), "${PREFSYNC_CONNECTIONS:-4}"));
    EXPECT_TRUE(matches(http.at("connections"), "16"));
    EXPECT_FALSE(matches(http.at("connections"), "lots"));
    EXPECT_TRUE(matches(http.at("insecure"), "off"));
    EXPECT_FALSE(matches(http.at("insecure"), "maybe"));
    EXPECT_TRUE(matches(http.at("request_timeout"), "500ms"));
    EXPECT_FALSE(matches(http.at("request_timeout"), "10"));
    EXPECT_TRUE(matches(http.at("max_response_bytes"), "8MiB"));
}

TEST(KeyReference, HasARowForEveryKeyAndMarksWhichTypesAConnectorKeyBelongsTo) {
    auto md = config_key_reference();
    for (auto key : {"`api.oauth.token_url`", "`http.connections`", "`jobs.NAME`", "`daemon.metrics_listen`",
                     "`source.incremental.overlap`", "`pull.searches[].endpoint`", "`sink.each`", "`normalize`"})
        EXPECT_THAT(md, HasSubstr(key));
    EXPECT_THAT(md, HasSubstr("| `source.path` | path | required (csv, sqlite) | csv: the CSV file; sqlite: "));
    EXPECT_THAT(md, HasSubstr("| `source.incremental.key` | column | required | sqlite, postgres: "));
    for (auto block : {"top", "daemon", "jobs", "pull", "value"}) {
        EXPECT_THAT(md, HasSubstr("<!-- BEGIN keys: " + std::string(block) + " "));
        EXPECT_THAT(md, HasSubstr("<!-- END keys: " + std::string(block) + " -->"));
    }
}

}  // namespace
}  // namespace prefsync::config
