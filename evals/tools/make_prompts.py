#!/usr/bin/env python3
"""Generates prompts.jsonl for the quorum tool-calling benchmark.

All prompts are hand-written here; this script only assembles them with the
shared tool definitions so every prompt carries complete OpenAI-style tools.
Run:  python3 make_prompts.py  (writes prompts.jsonl next to this file)
"""
import json
import os


def fn(name, description, properties, required=()):
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
            },
        },
    }


S = {"type": "string"}
I = {"type": "integer"}
N = {"type": "number"}
B = {"type": "boolean"}

T = {
    # ---- coding-assistant tools ----
    "read_file": fn(
        "read_file", "Read a text file from the project and return its contents.",
        {"path": dict(S, description="File path relative to the project root"),
         "start_line": dict(I, description="First line to return (1-based)"),
         "end_line": dict(I, description="Last line to return (inclusive)")},
        ["path"]),
    "write_file": fn(
        "write_file", "Create or overwrite a file with the given content.",
        {"path": dict(S, description="File path relative to the project root"),
         "content": dict(S, description="Full new file content")},
        ["path", "content"]),
    "list_dir": fn(
        "list_dir", "List the files and folders inside a directory.",
        {"path": dict(S, description="Directory path relative to the project root"),
         "recursive": dict(B, description="Also list sub-directories"),
         "show_hidden": dict(B, description="Include dot-files")},
        ["path"]),
    "search_code": fn(
        "search_code", "Search the source code for a text string and return matching lines.",
        {"query": dict(S, description="Text to search for"),
         "path": dict(S, description="Limit the search to this directory"),
         "case_sensitive": dict(B, description="Match case exactly"),
         "max_results": dict(I, description="Maximum number of matches to return")},
        ["query"]),
    "run_tests": fn(
        "run_tests", "Run the project's test suite and report failures.",
        {"path": dict(S, description="Only run tests under this path"),
         "filter": dict(S, description="Only run tests whose name contains this text"),
         "verbose": dict(B, description="Show full test output")},
        []),
    "git_diff": fn(
        "git_diff", "Show uncommitted changes in the git repository as a diff.",
        {"ref": dict(S, description="Compare against this branch or commit instead of HEAD"),
         "staged": dict(B, description="Show only staged changes"),
         "path": dict(S, description="Limit the diff to this file or directory")},
        []),
    "git_log": fn(
        "git_log", "Show the recent commit history of the git repository.",
        {"max_count": dict(I, description="Number of commits to show"),
         "path": dict(S, description="Only commits touching this path")},
        []),
    # ---- everyday tools ----
    "get_weather": fn(
        "get_weather", "Get the current weather for a city.",
        {"city": dict(S, description="City name"),
         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                  "description": "Temperature unit"}},
        ["city"]),
    "get_forecast": fn(
        "get_forecast", "Get a multi-day weather forecast for a city.",
        {"city": dict(S, description="City name"),
         "days": dict(I, description="Number of days to forecast (1-10)"),
         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                  "description": "Temperature unit"}},
        ["city", "days"]),
    "convert_currency": fn(
        "convert_currency", "Convert an amount of money from one currency to another.",
        {"amount": dict(N, description="Amount to convert"),
         "from_currency": dict(S, description="ISO code of the source currency, e.g. USD"),
         "to_currency": dict(S, description="ISO code of the target currency, e.g. EUR")},
        ["amount", "from_currency", "to_currency"]),
    "send_email": fn(
        "send_email", "Send an email.",
        {"to": dict(S, description="Recipient email address"),
         "subject": dict(S, description="Subject line"),
         "body": dict(S, description="Message body"),
         "cc": {"type": "array", "items": {"type": "string"},
                "description": "Extra recipients to copy"}},
        ["to", "subject", "body"]),
    "create_event": fn(
        "create_event", "Create a calendar event.",
        {"title": dict(S, description="Event title"),
         "date": dict(S, description="Date as YYYY-MM-DD"),
         "time": dict(S, description="Start time as HH:MM (24h)"),
         "duration_minutes": dict(I, description="Length of the event in minutes"),
         "attendees": {"type": "array", "items": {"type": "string"},
                       "description": "Email addresses of attendees"}},
        ["title", "date", "time"]),
    "lookup_stock": fn(
        "lookup_stock", "Look up the latest price of a stock by its ticker symbol.",
        {"symbol": dict(S, description="Ticker symbol, e.g. AAPL"),
         "exchange": {"type": "string", "enum": ["NASDAQ", "NYSE", "LSE"],
                      "description": "Stock exchange"},
         "include_history": dict(B, description="Also return the last 30 days of prices")},
        ["symbol"]),
    "set_reminder": fn(
        "set_reminder", "Set a reminder that fires after a number of minutes.",
        {"text": dict(S, description="What to be reminded about"),
         "minutes": dict(I, description="Minutes from now")},
        ["text", "minutes"]),
    "translate_text": fn(
        "translate_text", "Translate text into another language.",
        {"text": dict(S, description="Text to translate"),
         "target_language": dict(S, description="Language to translate into, e.g. French")},
        ["text", "target_language"]),
}

SYS_CODE = "You are a coding assistant working inside the user's repository. Use the tools when they help."
SYS_GEN = "You are a helpful assistant. Call a tool only when it is needed to answer."

CODE4 = ["read_file", "list_dir", "search_code", "git_diff"]
CODE5 = ["read_file", "list_dir", "search_code", "run_tests", "git_diff"]
LIFE4 = ["get_weather", "get_forecast", "lookup_stock", "convert_currency"]
OFFICE = ["send_email", "create_event", "set_reminder"]


def c(name, loose=None, **args):
    e = {"name": name, "arguments": args}
    if loose:
        e["loose"] = list(loose)
    return e


# (id, kind, user text, tool names, expected calls, optional system prompt)
P = []


def add(kind, text, tools, expect, system=None):
    P.append((kind, text, tools, expect, system))


# ---------------------------------------------------------------- pick
add("pick", "Show me the contents of src/main.rs.", CODE4,
    [c("read_file", path="src/main.rs")], SYS_CODE)
add("pick", "What files are in the crates/server directory?", CODE4,
    [c("list_dir", path="crates/server")], SYS_CODE)
add("pick", "Find every place where parse_header is used in the code.", CODE4,
    [c("search_code", query="parse_header")], SYS_CODE)
add("pick", "Run the test suite and tell me if anything fails.", CODE5,
    [c("run_tests")], SYS_CODE)
add("pick", "What have I changed since the last commit? Show me the diff.", CODE5,
    [c("git_diff")], SYS_CODE)
add("pick", "Show me the recent commit history.", ["git_diff", "git_log", "read_file", "list_dir"],
    [c("git_log")], SYS_CODE)
add("pick", "Search the repo for TODO comments.", ["read_file", "search_code", "list_dir", "run_tests"],
    [c("search_code", query="TODO")])
add("pick", "What's the weather like in Lisbon right now?", LIFE4,
    [c("get_weather", city="Lisbon")])
add("pick", "Give me the 5-day forecast for Oslo.", LIFE4,
    [c("get_forecast", city="Oslo", days=5)])
add("pick", "How much is 250 GBP in JPY?", LIFE4,
    [c("convert_currency", amount=250, from_currency="GBP", to_currency="JPY")])
add("pick", "What is the current price of NVDA stock?", LIFE4,
    [c("lookup_stock", symbol="NVDA")], SYS_GEN)
add("pick", "Email bob@example.com to tell him the deploy is finished.", OFFICE,
    [c("send_email", loose=["subject", "body"], to="bob@example.com",
       subject="Deploy finished", body="The deploy is finished.")])
add("pick", "Put a meeting called Sprint Review on my calendar for 2025-06-02 at 10:00.", OFFICE,
    [c("create_event", title="Sprint Review", date="2025-06-02", time="10:00")])
add("pick", "Remind me in 20 minutes to stretch.", OFFICE + ["get_weather"],
    [c("set_reminder", loose=["text"], text="stretch", minutes=20)])
add("pick", "Translate 'good morning' into Spanish.", ["translate_text", "send_email", "get_weather"],
    [c("translate_text", text="good morning", target_language="Spanish")])
add("pick", "Open the file README.md for me.", ["list_dir", "read_file", "write_file", "git_log"],
    [c("read_file", path="README.md")], SYS_CODE)

# ---------------------------------------------------------------- args
add("args", "Read lines 40 to 80 of src/server/router.rs.", ["read_file", "list_dir"],
    [c("read_file", path="src/server/router.rs", start_line=40, end_line=80)], SYS_CODE)
add("args", "Search for unwrap() in the src/engine directory, case sensitive, at most 10 results.",
    ["search_code"],
    [c("search_code", query="unwrap()", path="src/engine", case_sensitive=True, max_results=10)], SYS_CODE)
add("args", "Search the code for TimeoutError, case insensitive.", ["search_code", "read_file"],
    [c("search_code", query="TimeoutError", case_sensitive=False)], SYS_CODE)
add("args", "Run the tests in tests/integration whose names contain streaming, with verbose output.",
    ["run_tests"],
    [c("run_tests", path="tests/integration", filter="streaming", verbose=True)], SYS_CODE)
add("args", "Show only the staged changes to Cargo.toml.", ["git_diff", "read_file"],
    [c("git_diff", staged=True, path="Cargo.toml")], SYS_CODE)
add("args", "Show the diff of src/lib.rs against the main branch.", ["git_diff"],
    [c("git_diff", ref="main", path="src/lib.rs")], SYS_CODE)
add("args", "List everything under config recursively, including hidden files.", ["list_dir", "read_file"],
    [c("list_dir", path="config", recursive=True, show_hidden=True)], SYS_CODE)
add("args", "Open docs/Getting Started.md.", ["read_file"],
    [c("read_file", path="docs/Getting Started.md")], SYS_CODE)
add("args", "Show the last 3 commits that touched src/api.rs.", ["git_log", "git_diff"],
    [c("git_log", max_count=3, path="src/api.rs")], SYS_CODE)
add("args", "What's the temperature in Denver in fahrenheit?", ["get_weather"],
    [c("get_weather", city="Denver", unit="fahrenheit")])
add("args", "Give me a 3-day forecast for Nairobi in celsius.", ["get_forecast", "get_weather"],
    [c("get_forecast", city="Nairobi", days=3, unit="celsius")])
add("args", "Convert 1234.56 EUR to CHF.", ["convert_currency"],
    [c("convert_currency", amount=1234.56, from_currency="EUR", to_currency="CHF")])
add("args", "How many USD is 10000 KRW?", ["convert_currency", "lookup_stock"],
    [c("convert_currency", amount=10000, from_currency="KRW", to_currency="USD")])
add("args", "Get the price of BP on the LSE and include its price history.", ["lookup_stock"],
    [c("lookup_stock", symbol="BP", exchange="LSE", include_history=True)])
add("args", "Send an email to ana@corp.io with the subject Q3 report, cc tom@corp.io and li@corp.io. "
            "The body should say the report is attached.", ["send_email", "create_event"],
    [c("send_email", loose=["body"], to="ana@corp.io", subject="Q3 report",
       cc=["tom@corp.io", "li@corp.io"], body="The report is attached.")])
add("args", "Create an event titled Dentist on 2025-09-18 at 08:30 lasting 45 minutes.",
    ["create_event", "set_reminder"],
    [c("create_event", title="Dentist", date="2025-09-18", time="08:30", duration_minutes=45)])
add("args", "Schedule Design sync on 2025-07-01 at 14:00 with maria@x.com and jon@x.com.", ["create_event"],
    [c("create_event", title="Design sync", date="2025-07-01", time="14:00",
       attendees=["maria@x.com", "jon@x.com"])])
add("args", "Set a reminder in 90 minutes with the text: call the plumber", ["set_reminder"],
    [c("set_reminder", text="call the plumber", minutes=90)])

# ---------------------------------------------------------------- none
add("none", "Hi! How are you today?", ["get_weather", "lookup_stock"], [])
add("none", "What is the capital of Australia?", ["read_file", "list_dir", "search_code"], [])
add("none", "Explain in one sentence what a lifetime is in Rust.", ["run_tests", "git_diff"], [], SYS_CODE)
add("none", "Thanks, that's all for now.", ["send_email", "create_event"], [])
add("none", "Write a Python function that reverses a string.", ["read_file", "run_tests"], [], SYS_CODE)
add("none", "What does HTTP status code 404 mean?", ["get_weather", "convert_currency"], [])
add("none", "How many days are there in a leap year?", ["create_event", "set_reminder"], [], SYS_GEN)
add("none", "Tell me a short joke about programmers.", ["search_code", "list_dir"], [])
add("none", "What is 17 times 23?", ["convert_currency", "lookup_stock"], [], SYS_GEN)
add("none", "Who wrote the novel Pride and Prejudice?", ["get_weather", "send_email"], [])
add("none", "What is the difference between a list and a tuple in Python?",
    ["read_file", "search_code", "git_diff"], [], SYS_CODE)
add("none", "Good morning!", ["get_weather", "get_forecast"], [])
add("none", "What does the acronym JSON stand for?", ["read_file", "list_dir"], [], SYS_CODE)
add("none", "Can you explain what git rebase does, in general terms?", ["git_diff", "git_log"], [], SYS_CODE)
add("none", "At what temperature does water boil at sea level, in celsius?", ["get_weather"], [], SYS_GEN)
add("none", "Please rewrite this sentence more politely: send me the file now.",
    ["send_email", "set_reminder"], [], SYS_GEN)

# ---------------------------------------------------------------- parallel
add("parallel", "What's the weather in Paris and in Tokyo?", ["get_weather", "get_forecast"],
    [c("get_weather", city="Paris"), c("get_weather", city="Tokyo")])
add("parallel", "Read both src/config.rs and src/main.rs.", CODE4,
    [c("read_file", path="src/config.rs"), c("read_file", path="src/main.rs")], SYS_CODE)
add("parallel", "Get the stock prices of MSFT and GOOG.", ["lookup_stock", "convert_currency"],
    [c("lookup_stock", symbol="MSFT"), c("lookup_stock", symbol="GOOG")])
add("parallel", "Convert 100 USD to EUR, and also 100 USD to JPY.", ["convert_currency"],
    [c("convert_currency", amount=100, from_currency="USD", to_currency="EUR"),
     c("convert_currency", amount=100, from_currency="USD", to_currency="JPY")])
add("parallel", "List the files in src and in tests.", ["list_dir", "read_file"],
    [c("list_dir", path="src"), c("list_dir", path="tests")], SYS_CODE)
add("parallel", "Search the code for Mutex and, separately, for RwLock.", ["search_code", "read_file"],
    [c("search_code", query="Mutex"), c("search_code", query="RwLock")], SYS_CODE)
add("parallel", "What's the weather in Berlin, and what's the stock price of SAP?", LIFE4,
    [c("get_weather", city="Berlin"), c("lookup_stock", symbol="SAP")])
add("parallel", "Read README.md and list the docs directory.", CODE4,
    [c("read_file", path="README.md"), c("list_dir", path="docs")], SYS_CODE)
add("parallel", "Run the tests in tests/unit and show me the git diff.", CODE5,
    [c("run_tests", path="tests/unit"), c("git_diff")], SYS_CODE)
add("parallel", "Send an email to dev@team.org with the subject Standup moved, and create an event "
                "called Standup on 2025-05-12 at 09:30.", OFFICE,
    [c("send_email", loose=["body"], to="dev@team.org", subject="Standup moved",
       body="The standup has moved."),
     c("create_event", title="Standup", date="2025-05-12", time="09:30")])
add("parallel", "What's the weather in Madrid in celsius and in Chicago in fahrenheit?", ["get_weather"],
    [c("get_weather", city="Madrid", unit="celsius"), c("get_weather", city="Chicago", unit="fahrenheit")])
add("parallel", "Translate 'thank you' into French and into German.", ["translate_text", "send_email"],
    [c("translate_text", text="thank you", target_language="French"),
     c("translate_text", text="thank you", target_language="German")])
add("parallel", "Get the 7-day forecast for Seattle and the current weather in Miami.", LIFE4,
    [c("get_forecast", city="Seattle", days=7), c("get_weather", city="Miami")])
add("parallel", "How much is 50 EUR in GBP, and what is the price of TSLA?", LIFE4,
    [c("convert_currency", amount=50, from_currency="EUR", to_currency="GBP"),
     c("lookup_stock", symbol="TSLA")])
add("parallel", "Read lines 1 to 20 of build.rs and lines 1 to 20 of Cargo.toml.", ["read_file", "list_dir"],
    [c("read_file", path="build.rs", start_line=1, end_line=20),
     c("read_file", path="Cargo.toml", start_line=1, end_line=20)], SYS_CODE)
add("parallel", "Remind me in 10 minutes to drink water and in 60 minutes to leave for the gym.",
    ["set_reminder", "create_event"],
    [c("set_reminder", loose=["text"], text="drink water", minutes=10),
     c("set_reminder", loose=["text"], text="leave for the gym", minutes=60)])


def build():
    counters = {}
    rows = []
    for kind, text, tools, expect, system in P:
        counters[kind] = counters.get(kind, 0) + 1
        msgs = []
        if system:
            msgs.append({"role": "system", "content": system})
        msgs.append({"role": "user", "content": text})
        rows.append({
            "id": "%s-%02d" % (kind, counters[kind]),
            "kind": kind,
            "messages": msgs,
            "tools": [T[t] for t in tools],
            "expect": expect,
        })
    return rows


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prompts.jsonl")
    rows = build()
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("wrote %d prompts to %s" % (len(rows), out))
