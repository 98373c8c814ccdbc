#pragma once
// `prefsync init`: a starter config from a source's columns and its first rows. The result
// passes `check-config` and maps every sampled row without a reject, with nothing edited.
//
// Design constraints:
// - Never a secret in the file: the token comes from an environment variable (token_env),
//   a database password from password_env or libpq's own defaults.
// - Every column appears: mapped to a guessed Profile field, as the identity, or as a
//   commented-out CustomFields entry (custom fields must exist in the MyPreferences account,
//   so unknown columns are not sent unless asked for). Each guess names its column in a
//   comment when the name alone does not make it obvious.
// - Column names of any spelling are written so the config reader gets them back exactly:
//   YAML-quoted where needed, `$` doubled against ${VAR} expansion.
// - Deterministic: the same columns and rows give the same text.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace prefsync::init {

// The job's source as it is written into the config.
struct StarterSource {
    std::string type;          // csv | sqlite | postgres
    std::string path;          // csv, sqlite: relative to the config file, or absolute
    char delimiter = ',';      // csv
    std::string table;         // sqlite, postgres
    std::string conninfo;      // postgres, without a password
    std::string password_env;  // postgres: the variable holding the password; "" for libpq's defaults
    std::string description;   // "csv customers.csv": for the file's opening comment
};

struct StarterOptions {
    std::string job = "customers";
    std::string base_url = "http://127.0.0.1:8080/Profiles/v2";
    std::string client_id = "12345";
    std::string token_env = "PREFSYNC_TOKEN";
    std::string id_column;       // "" = guess
    std::string id_type;         // "" = guess
    bool custom_fields = false;  // map the unguessed columns to CustomFields instead of commenting them out
    std::string config_name;     // how the opening comment names the file in its example commands
};

struct StarterConfig {
    std::string yaml;
    std::vector<std::string> guesses;   // "CustomerName.FirstName <- \"First Name\"", one per mapped column
    std::vector<std::string> warnings;  // what the user should look at before a real run
};

// Thrown for options that contradict the source (an --id-column it does not have).
class StarterError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// `rows`: the sampled rows, one value per column (NULL as nullopt), readable rows only.
StarterConfig make_starter_config(const StarterOptions& options, const StarterSource& source,
                                  const std::vector<std::string>& columns,
                                  const std::vector<std::vector<std::optional<std::string>>>& rows);

}  // namespace prefsync::init
