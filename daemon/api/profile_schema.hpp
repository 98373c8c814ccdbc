#pragma once
// The shape of the MyPreferences Profile object (the API reference's "Profile object"
// section), as data. The mapping validates field names and converts values by it, and the
// emulator validates request bodies by it, so both agree on one definition.
//
// Design constraints:
// - Names are exactly the API's PascalCase keys; lookups are case-sensitive because the
//   API's are, and a near miss is reported with a suggestion instead.
// - Read-only fields are listed (a client must not send them) so the mapping can refuse them.
#include <span>
#include <string>
#include <string_view>

namespace prefsync::api {

enum class FieldType { String, Int, Bool, Object, Array };

struct ObjectSchema;

struct FieldSchema {
    std::string_view name;
    FieldType type;
    // For Object fields, the object's schema; for Array fields, the element's schema
    // (every array in the Profile holds objects).
    const ObjectSchema* element = nullptr;
    bool read_only = false;
};

struct ObjectSchema {
    std::string_view name;  // e.g. "Email", for messages
    std::span<const FieldSchema> fields;

    const FieldSchema* find(std::string_view field) const;
    // The field whose name is closest to `field` (edit distance), for "did you mean".
    std::string_view closest(std::string_view field) const;
};

const ObjectSchema& profile_schema();
// The body of "Archive preferences" (W9), which is not a Profile.
const ObjectSchema& archive_schema();

std::string_view to_string(FieldType type);

}  // namespace prefsync::api
