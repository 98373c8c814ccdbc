#pragma once
// Rows → Profile JSON. A job's MappingSpec is compiled once against the source's columns
// (unknown columns are configuration errors, found before any row is read); then each row
// maps to its identity, its body and a content hash.
//
// Design constraints:
// - Deterministic: the same row and config give byte-identical JSON (fields in the order the
//   config lists them) and the same hash; change detection depends on it.
// - "Empty means absent": empty values, objects and elements are left out, so a merge
//   update never blanks a field by accident (EmptyPolicy::Keep opts out per field).
// - A bad value rejects its row with the job, key path, origin and value; it never throws.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "connectors/source.hpp"

namespace prefsync::mapping {

struct Identity {
    std::string alternate_id_type;  // empty when by profile id
    std::string alternate_id;
    std::optional<std::int64_t> profile_id;

    // "CRMID:42" or "profile:1234": the journal key and what logs show.
    std::string key() const;
    // {"alternate_id_type":"CRMID","alternate_id":"42"} or {"profile_id":1234}
    std::string to_json() const;
};

// An alternate id as a row's cell gives it: trimmed, then cleaned by identity.normalize. The
// one reading of it (rows, `explain`, a pull's ids), so an id means one identity everywhere.
std::string alternate_id_of(const config::IdentitySpec& identity, std::string_view cell);

struct MappedRow {
    Identity identity;
    std::string body;      // serialized JSON; "" for modes without a body (delete)
    std::string hash;      // the first 128 bits of SHA-256 over identity and body, hex; "" for a deleted row
    bool deleted = false;  // the job's deleted_column says the row is gone (no body, no hash)
};

struct RowError {
    std::string key_path;  // jobs.crm.mapping.Emails[0].EmailAddress
    std::string message;   // what is wrong, naming the value
    // The row's identity when only its body was wrong: the row is still in the source, and
    // its profile must not be taken for one that left it.
    std::optional<Identity> identity;
};

using MapResult = std::variant<MappedRow, RowError>;

class Mapper {
public:
    // Throws config::ConfigError naming every unknown column (with a suggestion). The Mapper
    // refers to `job`, which must outlive it.
    static Mapper compile(const config::JobConfig& job, const std::vector<std::string>& columns);

    Mapper(Mapper&&) noexcept;
    Mapper& operator=(Mapper&&) noexcept;
    ~Mapper();

    MapResult map(const connectors::Row& row) const;
    // The identity of a row the source refused for one of its values (a source that still
    // read them: invalid UTF-8 or a NUL byte in another column), if its identity column reads as one:
    // that profile is still in the source.
    std::optional<Identity> identity_of(const connectors::Row& row) const;

private:
    std::optional<RowError> read_identity(const connectors::Row& row, Identity& identity) const;
    struct Compiled;
    explicit Mapper(std::unique_ptr<Compiled> compiled);
    std::unique_ptr<Compiled> compiled_;
};

// Hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace prefsync::mapping
