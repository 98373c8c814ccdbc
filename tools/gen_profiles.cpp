// Writes a realistic synthetic customer CSV for the examples and benchmarks:
//   prefsync-gen-profiles ROWS [SEED] > profiles.csv
// The same ROWS and SEED always give the same bytes (a self-contained generator, not
// <random>'s distributions, whose output differs between standard libraries).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[below(v.size())];
    }
};

struct Name {
    std::string_view first, last, ascii_first, ascii_last;  // ascii_* for email addresses
};

const std::vector<Name> names = {
    {"José", "García", "jose", "garcia"},
    {"Zoë", "Müller", "zoe", "mueller"},
    {"Łukasz", "Kowalski", "lukasz", "kowalski"},
    {"François", "Lefèvre", "francois", "lefevre"},
    {"Ольга", "Иванова", "olga", "ivanova"},
    {"伟", "李", "wei", "li"},
    {"さくら", "佐藤", "sakura", "sato"},
    {"محمد", "الأحمد", "mohammed", "alahmad"},
    {"Ngọc", "Nguyễn", "ngoc", "nguyen"},
    {"Søren", "Kierkegård", "soren", "kierkegard"},
    {"Björk", "Guðmundsdóttir", "bjork", "gudmundsdottir"},
    {"Chloé", "O'Brien", "chloe", "obrien"},
    {"James", "Smith", "james", "smith"},
    {"Mary", "Johnson", "mary", "johnson"},
    {"Robert", "Williams", "robert", "williams"},
    {"Patricia", "Brown", "patricia", "brown"},
    {"Michael", "Jones", "michael", "jones"},
    {"Linda", "Davis", "linda", "davis"},
    {"Aarav", "Sharma", "aarav", "sharma"},
    {"Priya", "Patel", "priya", "patel"},
    {"Σοφία", "Παπαδοπούλου", "sofia", "papadopoulou"},
    {"Yağmur", "Yılmaz", "yagmur", "yilmaz"},
    {"Dvořák", "Antonín", "antonin", "dvorak"},
    {"Émile", "Zola-Durand", "emile", "zola"},
    {"Kwame", "Mensah", "kwame", "mensah"},
    {"Ana", "da Silva, Jr.", "ana", "dasilva"},
};
const std::vector<std::string_view> domains = {"example.com", "example.org", "mail.example.net", "example.co.uk",
                                               "example.de"};
const std::vector<std::string_view> streets = {"Main St",    "Oak Avenue",  "Rue de la Paix",  "Königstraße",
                                               "Elm Street", "Calle Mayor", "Peachtree Rd NE", "Via Roma"};
struct City {
    std::string_view city, state, country, postal_prefix;
};
const std::vector<City> cities = {
    {"Atlanta", "GA", "US", "303"},  {"Chicago", "IL", "US", "606"}, {"Austin", "TX", "US", "787"},
    {"Portland", "OR", "US", "972"}, {"Toronto", "ON", "CA", "M5V"}, {"München", "BY", "DE", "803"},
    {"Montréal", "QC", "CA", "H2X"}, {"Boston", "MA", "US", "021"},
};
const std::vector<std::string_view> tags = {"vip", "newsletter",    "churn-risk", "wholesale",
                                            "b2b", "early-adopter", "survey",     "events"};
const std::vector<std::string_view> tiers = {"Bronze", "Silver", "Gold", "Platinum"};
const std::vector<std::string_view> locales = {"en_US", "en_CA", "fr_CA", "de_DE", "es_ES"};

// RFC 4180 quoting, only where needed.
void field(std::string& out, std::string_view v) {
    if (v.find_first_of(",\"\r\n") == std::string_view::npos) {
        out += v;
        return;
    }
    out += '"';
    for (char c : v) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s ROWS [SEED] > profiles.csv\n", argv[0]);
        return 1;
    }
    long long rows = std::atoll(argv[1]);
    SplitMix64 rng{argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261128ull};
    std::string out =
        "customer_id,first_name,last_name,email,work_email,mobile_phone,home_phone,address1,"
        "address2,city,state,postal_code,country,tags,loyalty_tier,signup_date,"
        "newsletter_opt_in,sms_opt_in,email_consent,customer_type,locale\r\n";
    char buf[64];
    for (long long i = 1; i <= rows; ++i) {
        const Name& n = rng.pick(names);
        std::snprintf(buf, sizeof buf, "C%08lld", i);
        field(out, buf);
        out += ',';
        field(out, n.first);
        out += ',';
        field(out, n.last);
        out += ',';
        // Mixed case and stray spaces, as CRM exports have: the mapping cleans them.
        // Every draw in a statement of its own: the order in which operands or arguments are
        // evaluated is unspecified, and GCC and clang differ.
        bool space = rng.chance(20);
        bool prefix = rng.chance(30);
        std::string_view domain = rng.pick(domains);
        std::string email = std::string(space ? " " : "") + (prefix ? "Customer." : "") + std::string(n.ascii_first) +
                            "." + std::string(n.ascii_last) + std::to_string(i) + "@" + std::string(domain);
        if (rng.chance(3)) email.clear();
        field(out, email);
        out += ',';
        if (rng.chance(25)) {
            std::string work = std::string(n.ascii_first) + "@corp" + std::to_string(i % 97) + ".example.com";
            field(out, work);
        }
        out += ',';
        if (rng.chance(80)) {
            std::size_t area = 200 + rng.below(800), exchange = 200 + rng.below(800), line = rng.below(10000);
            std::snprintf(buf, sizeof buf, "(%03zu) %03zu-%04zu", area, exchange, line);
            field(out, buf);
        }
        out += ',';
        if (rng.chance(30)) {
            std::size_t area = 200 + rng.below(800), exchange = 200 + rng.below(800), line = rng.below(10000);
            std::snprintf(buf, sizeof buf, "+1 %03zu.%03zu.%04zu", area, exchange, line);
            field(out, buf);
        }
        out += ',';
        const City& c = rng.pick(cities);
        bool has_address = rng.chance(85);
        if (has_address) {
            std::size_t number = 1 + rng.below(9999);
            std::string_view street = rng.pick(streets);
            field(out, std::to_string(number) + " " + std::string(street));
        }
        out += ',';
        if (has_address && rng.chance(15)) field(out, "Apt " + std::to_string(1 + rng.below(40)) + ", Floor 2");
        out += ',';
        if (has_address) field(out, c.city);
        out += ',';
        if (has_address) field(out, c.state);
        out += ',';
        if (has_address) field(out, std::string(c.postal_prefix) + std::to_string(10 + rng.below(90)));
        out += ',';
        if (has_address) field(out, c.country);
        out += ',';
        std::string t;
        for (std::size_t k = 0, count = rng.below(4); k < count; ++k)
            t += (t.empty() ? "" : ";") + std::string(rng.pick(tags));
        field(out, t);
        out += ',';
        if (rng.chance(70)) field(out, rng.pick(tiers));
        out += ',';
        std::size_t month = 1 + rng.below(12), day = 1 + rng.below(28), year = 2015 + rng.below(11);
        std::snprintf(buf, sizeof buf, "%02zu/%02zu/%04zu", month, day, year);
        field(out, buf);
        out += ',';
        static const std::vector<std::string_view> yn = {"Y", "N", "", "y"};
        field(out, rng.pick(yn));
        out += ',';
        static const std::vector<std::string_view> yesno = {"yes", "no", "", "No"};
        field(out, rng.pick(yesno));
        out += ',';
        static const std::vector<std::string_view> tf = {"true", "false", "TRUE", ""};
        field(out, rng.pick(tf));
        out += ',';
        field(out, rng.chance(90) ? "Retail" : "Commercial");
        out += ',';
        field(out, rng.pick(locales));
        out += "\r\n";
        if (out.size() > (1 << 20)) {
            std::fwrite(out.data(), 1, out.size(), stdout);
            out.clear();
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
}
