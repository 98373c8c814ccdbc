#!/usr/bin/env python3
"""Turns `prefsync dry-run` output into the reference clients' inputs, so that they send
what prefsync sends for the same rows:

    bodies.py URL_PREFIX TOKEN USER_AGENT CURL_CONFIG WRK_BODY < dry-run.jsonl

CURL_CONFIG: one `curl -K` entry per row, POST to URL_PREFIX + the row's alternate id with
that row's body and prefsync's headers; WRK_BODY: the body of median size (wrk sends one
fixed request). Bodies are cut out of the dry-run line byte for byte rather than parsed
and re-serialised, which could change escaping or number formatting and so the size.
"""
import json
import sys


def curl_quote(s):
    # Double-quoted curl config strings interpret backslash escapes.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    url_prefix, token, user_agent, curl_path, wrk_path = sys.argv[1:6]
    bodies = []
    headers = "".join(
        f"header = {curl_quote(h)}\n"
        # "Expect:" (empty) keeps curl from asking for 100-continue, which prefsync never does.
        for h in (f"Authorization: {token}", "Content-Type: application/json", "Accept: application/json", "Expect:")
    )
    with open(curl_path, "w", encoding="utf-8") as curl:
        for line in sys.stdin:
            line = line.rstrip("\n")
            cut = line.find(',"body":')
            if cut < 0:
                continue  # the summary line
            body = line[cut + len(',"body":'):-1]
            alternate_id = json.loads(line[:cut] + "}")["identity"]["alternate_id"]
            if bodies:
                curl.write("next\n")  # separates entries; one after the last would be an empty one
            bodies.append(body)
            curl.write(f"url = {curl_quote(url_prefix + alternate_id)}\n{headers}"
                       f"user-agent = {curl_quote(user_agent)}\n"
                       f"data-binary = {curl_quote(body)}\noutput = \"/dev/null\"\n")
    if not bodies:
        sys.exit("bodies.py: no rows in the dry-run output")
    median = sorted(bodies, key=lambda b: len(b.encode()))[len(bodies) // 2]
    with open(wrk_path, "w", encoding="utf-8") as f:
        f.write(median)
    sizes = sorted(len(b.encode()) for b in bodies)
    print(f"{len(bodies)} bodies, {sizes[0]}–{sizes[-1]} bytes, median {len(median.encode())}")


if __name__ == "__main__":
    main()
