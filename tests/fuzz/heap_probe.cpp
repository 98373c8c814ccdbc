// Runs a fuzz target's inputs in passes and prints the bytes the program holds after each
// (ASan's allocator statistics): flat from the second pass on means the process keeps no
// memory between inputs, however its RSS grows (ASan's quarantine and free lists). A long
// campaign's RSS-limit finding that does not reproduce from its input alone is judged so.
//   heap_probe_TARGET PASSES FILE...
#include <sanitizer/allocator_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s PASSES FILE...\n", argv[0]);
        return 2;
    }
    std::vector<std::string> inputs;
    for (int i = 2; i < argc; ++i) {
        std::ifstream in(argv[i], std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        inputs.push_back(text.str());
    }
    int passes = std::atoi(argv[1]);
    for (int p = 0; p < passes; ++p) {
        for (const auto& in : inputs)
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
        std::printf("pass %d: %zu bytes allocated\n", p + 1, __sanitizer_get_current_allocated_bytes());
    }
    return 0;
}
