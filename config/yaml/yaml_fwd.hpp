#pragma once
// For headers that declare section parsers: the types in their signatures, without
// yaml-cpp, so the code that only reads the parsed structs does not compile YAML headers.
namespace YAML {
class Node;
}  // namespace YAML

namespace prefsync::config {
class YamlReader;
struct KeyTable;
}  // namespace prefsync::config
