#include "profile_schema.hpp"
#include "daemon/base/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <array>
#include <vector>

namespace prefsync::api {
namespace {

using F = FieldSchema;
constexpr auto S = FieldType::String;
constexpr auto I = FieldType::Int;
constexpr auto B = FieldType::Bool;
constexpr auto O = FieldType::Object;
constexpr auto A = FieldType::Array;

const std::array edited_fields{F{"CreateDate", S, nullptr, true}, F{"CreatedBy", S, nullptr, true},
                               F{"ModifiedDate", S, nullptr, true}, F{"ModifiedBy", S, nullptr, true}};
const ObjectSchema edited{"Edited", edited_fields};

const std::array consent_fields{F{"ConsentType", S},
                                F{"ConsentVersion", S},
                                F{"Locale", S},
                                F{"ConsentStatus", I},
                                F{"ReasonCode", S},
                                F{"ConsentDate", S},
                                F{"ExpirationDate", S},
                                F{"SourceId", S},
                                F{"Expired", B},
                                F{"Edited", O, &edited, true},
                                F{"UpdatedVersionPending", B},
                                F{"IsActive", B}};
const ObjectSchema consent{"Consent", consent_fields};

const std::array consent_association_fields{F{"ConsentType", S}, F{"ConsentVersion", S}, F{"IsActive", B},
                                            F{"Locale", S}, F{"ReasonCode", S}};
const ObjectSchema consent_association{"ConsentAssociation", consent_association_fields};

const std::array preference_attribute_fields{F{"Key", S}, F{"Value", S}};
const ObjectSchema preference_attribute{"PreferenceAttribute", preference_attribute_fields};

const std::array preference_fields{F{"ProgramId", S},
                                   F{"ChannelId", S},
                                   F{"ConsentAssociations", A, &consent_association},
                                   F{"MatchType", S, nullptr, true},
                                   F{"ReasonCode", S},
                                   F{"ExpirationDate", S},
                                   F{"PreferenceStatus", S},
                                   F{"LastModifiedDate", S, nullptr, true},
                                   F{"UserId", S},
                                   F{"SourceId", S},
                                   F{"FilterId", S},
                                   F{"PreferenceType", I},
                                   F{"FrequencyId", S},
                                   F{"PreferenceAttributes", A, &preference_attribute},
                                   F{"CustomerDate", S}};
const ObjectSchema preference{"Preference", preference_fields};

const std::array custom_field_fields{F{"Name", S}, F{"Value", S}, F{"IsActive", B}, F{"Edited", O, &edited, true}};
const ObjectSchema custom_field{"CustomField", custom_field_fields};

const std::array group_fields{F{"GroupType", S}, F{"IsPrimary", B}, F{"GroupName", S}, F{"IsActive", B},
                              F{"Edited", O, &edited, true}};
const ObjectSchema group{"Group", group_fields};

const std::array tag_fields{F{"Name", S}};
const ObjectSchema tag{"ProfileTag", tag_fields};

const std::array address_fields{F{"AddressPreferences", A, &preference},
                                F{"AddressType", S},
                                F{"IsActive", B},
                                F{"IsDefault", B},
                                F{"Consents", A, &consent},
                                F{"CassAddress1", S, nullptr, true},
                                F{"CassAddress2", S, nullptr, true},
                                F{"CassCity", S, nullptr, true},
                                F{"CassStateProvince", S, nullptr, true},
                                F{"CassPostalCode", S, nullptr, true},
                                F{"CassStatus", S, nullptr, true},
                                F{"Country", S},
                                F{"Edited", O, &edited, true},
                                F{"Address1", S},
                                F{"Address2", S},
                                F{"City", S},
                                F{"StateProvince", S},
                                F{"CountryCode_Numeric", S},
                                F{"CountryCode_Alpha2", S},
                                F{"CountryCode_Alpha3", S},
                                F{"PostalCode", S}};
const ObjectSchema address{"Address", address_fields};

const std::array email_fields{F{"EmailPreferences", A, &preference},
                              F{"EmailAddressType", S},
                              F{"EmailAddress", S},
                              F{"IsDefault", B},
                              F{"Consents", A, &consent},
                              F{"IsActive", B},
                              F{"Edited", O, &edited, true}};
const ObjectSchema email{"Email", email_fields};

const std::array phone_fields{F{"PhonePreferences", A, &preference},
                              F{"PhoneType", S},
                              F{"PhoneNumber", S},
                              F{"PhoneNumberNumeric", I},
                              F{"IsDefault", B},
                              F{"Consents", A, &consent},
                              F{"IsMobile", B},
                              F{"IsActive", B},
                              F{"Edited", O, &edited, true}};
const ObjectSchema phone{"PhoneNumber", phone_fields};

const std::array customer_name_fields{F{"FirstName", S}, F{"MiddleName", S}, F{"LastName", S}, F{"Prefix", S},
                                      F{"Suffix", S}};
const ObjectSchema customer_name{"CustomerName", customer_name_fields};

const std::array alternate_id_fields{F{"AlternateIdType", S}, F{"AlternateId", S}, F{"IsActive", B},
                                     F{"Edited", O, &edited, true}, F{"AlternateIdTypeLink", I}};
const ObjectSchema alternate_id{"AlternateId", alternate_id_fields};

const std::array profile_fields{F{"Consents", A, &consent},
                                F{"CustomFields", A, &custom_field},
                                F{"Groups", A, &group},
                                F{"ProfileTags", A, &tag},
                                F{"Addresses", A, &address},
                                F{"Emails", A, &email},
                                F{"PhoneNumbers", A, &phone},
                                F{"ProfilePreferences", A, &preference},
                                F{"ProfileId", I, nullptr, true},
                                F{"IsActive", B},
                                F{"Edited", O, &edited, true},
                                F{"RegistrationConfirmed", B},
                                F{"CustomerType", S},
                                F{"PreserveConsents", B},
                                F{"PreservePreferences", B},
                                F{"CustomerName", O, &customer_name},
                                F{"DefaultLocale", S},
                                F{"UpdateStatus", S, nullptr, true},
                                F{"ReasonCode", S},
                                F{"AlternateIds", A, &alternate_id}};
const ObjectSchema profile{"Profile", profile_fields};

const std::array archive_phone_fields{F{"PhoneType", S}, F{"PhoneNumber", S}, F{"PhoneNumberNumeric", I},
                                      F{"FilterId", S}, F{"Reason_Code", S}};
const ObjectSchema archive_phone{"ArchivePhone", archive_phone_fields};
const std::array archive_address_fields{F{"Address1", S},
                                        F{"Address2", S},
                                        F{"City", S},
                                        F{"StateProvince", S},
                                        F{"CountryCode_Numeric", S},
                                        F{"CountryCode_Alpha2", S},
                                        F{"CountryCode_Alpha3", S},
                                        F{"PostalCode", S},
                                        F{"AddressType", S},
                                        F{"FilterId", S},
                                        F{"Reason_Code", S}};
const ObjectSchema archive_address{"ArchiveAddress", archive_address_fields};
const std::array archive_email_fields{F{"EmailAddressType", S}, F{"EmailAddress", S}, F{"FilterId", S},
                                      F{"Reason_Code", S}};
const ObjectSchema archive_email{"ArchiveEmail", archive_email_fields};
const std::array archive_profile_preference_fields{F{"CustomerType", S}, F{"FilterId", S}, F{"Reason_Code", S}};
const ObjectSchema archive_profile_preference{"ArchiveProfilePreference", archive_profile_preference_fields};
const std::array archive_fields{F{"GlobalDeactivate", B},
                                F{"Reason_Code", S},
                                F{"PhoneNumbers", A, &archive_phone},
                                F{"Addresses", A, &archive_address},
                                F{"Emails", A, &archive_email},
                                F{"ProfilePreferences", A, &archive_profile_preference}};
const ObjectSchema archive{"ArchivePreferences", archive_fields};

}  // namespace

const FieldSchema* ObjectSchema::find(std::string_view field) const {
    for (const auto& f : fields)
        if (f.name == field) return &f;
    return nullptr;
}

std::string_view ObjectSchema::closest(std::string_view field) const {
    std::vector<std::string_view> names;
    for (const auto& f : fields) names.push_back(f.name);
    auto best = base::suggest(field, names);
    const auto* match = best.empty() ? nullptr : find(best);
    return match ? match->name : std::string_view{};
}

const ObjectSchema& profile_schema() {
    return profile;
}
const ObjectSchema& archive_schema() {
    return archive;
}

std::string_view to_string(FieldType type) {
    switch (type) {
        case FieldType::String: return "string";
        case FieldType::Int: return "integer";
        case FieldType::Bool: return "boolean";
        case FieldType::Object: return "object";
        case FieldType::Array: return "array";
    }
    return "?";
}

}  // namespace prefsync::api
