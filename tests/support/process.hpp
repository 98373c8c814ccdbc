#pragma once
// Starts a child process with its stdout on a pipe, for tests that drive the real binary
// (read its first line, signal it, collect its exit code).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace prefsync::testing {

class ChildProcess {
public:
    // `stderr_path`: where the child's stderr goes (appended); empty: the test's stderr.
    explicit ChildProcess(std::vector<std::string> argv, const std::string& stderr_path = "") {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            dup2(fds[1], STDOUT_FILENO);
            if (!stderr_path.empty()) {
                int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (fd >= 0) dup2(fd, STDERR_FILENO);
            }
            close(fds[0]);
            close(fds[1]);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            execv(args[0], args.data());
            _exit(127);
        }
        close(fds[1]);
        out_ = fdopen(fds[0], "r");
    }
    ~ChildProcess() {
        if (pid_ > 0 && !waited_) {
            kill(pid_, SIGKILL);
            wait();
        }
        if (out_) std::fclose(out_);
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // The next line of the child's stdout, without its newline; "" at end of output.
    std::string read_line() {
        std::string line;
        for (int c; (c = std::fgetc(out_)) != EOF && c != '\n';) line += static_cast<char>(c);
        return line;
    }
    // Nothing once the child was waited for (its pid may be another process's by then).
    void signal(int sig) {
        if (!waited_) kill(pid_, sig);
    }
    // Whether the child is still running (reaps it if it has exited).
    bool running() {
        if (waited_) return false;
        int status = 0;
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == 0) return true;
        waited_ = true;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
    }
    // Waits for the child; its exit code, or 128+signal.
    int wait() {
        if (waited_) return exit_status_;
        int status = 0;
        waitpid(pid_, &status, 0);
        waited_ = true;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_status_;
    }

private:
    pid_t pid_ = -1;
    std::FILE* out_ = nullptr;
    bool waited_ = false;
    int exit_status_ = -1;
};

}  // namespace prefsync::testing
