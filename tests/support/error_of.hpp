#pragma once
// The message of the exception of type E that f() throws; a test failure if it throws none.
#include <gtest/gtest.h>

#include <string>

namespace prefsync::testing {

template <typename E, typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected an exception";
    return "";
}

}  // namespace prefsync::testing
