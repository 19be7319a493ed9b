"""The codebase tools through the official MCP Python SDK, over stdio (`quorum mcp`) and
over Streamable HTTP (`/mcp` of `quorum serve`): initialize, list the tools, call each one
on the fixture repository, and the error paths."""

import contextlib
import json
import os
import subprocess

import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import SERVICE_PY, committed, git, quorum_bin

TOOLS = ["read_file", "analyze_codebase", "search_docs", "find_references", "git_diff", "run_tests"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def session_over(transport, workspace, server_url):
    if transport == "stdio":
        params = StdioServerParameters(
            command=quorum_bin(), args=["mcp", "--workspace", str(workspace)], env=dict(os.environ)
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                yield session
    else:
        async with streamable_http_client(f"{server_url}/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                yield session


@pytest.fixture(params=["stdio", "http"])
def transport(request):
    return request.param


@pytest.mark.anyio
async def test_initialize_and_list_tools(transport, workspace, server):
    async with session_over(transport, workspace, server) as session:
        init = await session.initialize()
        assert init.server_info.name == "quorum"
        assert "workspace" in (init.instructions or "")
        tools = (await session.list_tools()).tools
        assert [t.name for t in tools] == TOOLS
        for tool in tools:
            assert tool.input_schema["type"] == "object"
            assert len(tool.description) > 40


@pytest.mark.anyio
async def test_call_every_tool(transport, workspace, server):
    async with session_over(transport, workspace, server) as session:
        await session.initialize()

        async def call(name, arguments):
            result = await session.call_tool(name, arguments)
            assert not result.is_error, result.content
            # The JSON comes both as structured content and as text.
            assert json.loads(result.content[0].text) == result.structured_content
            return result.structured_content

        read = await call("read_file", {"path": "app/service.py"})
        assert read["content"] == SERVICE_PY.replace('parse_config("")', 'parse_config("quiet")')

        analysis = await call("analyze_codebase", {"path": "app/service.py"})
        assert [lang["language"] for lang in analysis["languages"]] == ["Python"]
        names = [(s["kind"], s["name"]) for s in analysis["symbols"][0]["symbols"]]
        assert names == [("function", "parse_config"), ("class", "Service"), ("method", "run")]

        found = await call("search_docs", {"query": "parse_config", "glob": ["*.md"]})
        assert [(m["path"], m["line"]) for m in found["matches"]] == [("README.md", 3)]

        refs = await call("find_references", {"symbol": "parse_config"})
        assert [(d["path"], d["line"]) for d in refs["definitions"]] == [("app/service.py", 1)]
        assert {r["path"] for r in refs["references"]} == {"README.md", "app/service.py", "tests/test_app.py"}

        diff = await call("git_diff", {})
        assert diff["files"] == [{"path": "app/service.py", "added": 1, "removed": 1}]
        assert '+        return parse_config("quiet")' in diff["diff"]

        tests = await call("run_tests", {"command": "pytest"})
        assert (tests["passed"], tests["failed"], tests["success"]) == (2, 0, True)


@pytest.mark.anyio
async def test_tool_failures_are_results_and_unknown_tools_are_protocol_errors(transport, workspace, server):
    async with session_over(transport, workspace, server) as session:
        await session.initialize()
        escape = await session.call_tool("read_file", {"path": "../../etc/passwd"})
        assert escape.is_error
        assert "outside the workspace" in escape.content[0].text
        git_internals = await session.call_tool("read_file", {"path": ".git/config"})
        assert git_internals.is_error and "inside .git" in git_internals.content[0].text
        bad_args = await session.call_tool("search_docs", {"text": "x"})
        assert bad_args.is_error and "unknown field" in bad_args.content[0].text
        not_allowed = await session.call_tool("run_tests", {"command": "rm -rf /"})
        assert not_allowed.is_error
        with pytest.raises(MCPError) as error:
            await session.call_tool("delete_everything", {})
        assert error.value.code == -32602


CALC_LIB = """pub fn double(x: i32) -> i32 {
    x * 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn doubles_two() {
        assert_eq!(super::double(2), 4);
    }

    #[test]
    fn fails_if_run() {
        panic!("not named, so not run");
    }
}
"""


@pytest.mark.anyio
async def test_cargo_runs_the_named_tests_of_a_package_in_worktrees_sharing_the_workspaces_target(tmp_path):
    """`run_tests` with a package and test names runs only those tests, and a worktree's build
    goes to the workspace's target directory, so that candidates share one build cache."""
    root, record = tmp_path / "calc", tmp_path / "out_dirs.txt"
    build = (
        "fn main() {\n    use std::io::Write;\n"
        f"    let mut f = std::fs::OpenOptions::new().create(true).append(true).open({json.dumps(str(record))}).unwrap();\n"
        '    writeln!(f, "{}", std::env::var("OUT_DIR").unwrap()).unwrap();\n}\n'
    )
    # A dependency both worktrees share by path: built once, then reused.
    dep = tmp_path / "dep"
    (dep / "src").mkdir(parents=True)
    (dep / "Cargo.toml").write_text('[package]\nname = "dep"\nversion = "0.1.0"\nedition = "2021"\n')
    (dep / "src/lib.rs").write_text("pub fn two() -> i32 {\n    2\n}\n")
    files = {
        "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n\n'
                      f'[dependencies]\ndep = {{ path = {json.dumps(str(dep))} }}\n',
        "build.rs": build,
        "src/lib.rs": CALC_LIB,
        "tests/more.rs": "#[test]\nfn double_of_zero() {\n    assert_eq!(calc::double(0), 0);\n}\n",
        ".gitignore": "target/\n",
    }
    committed(root, files, "calc")
    trees = [tmp_path / "candidate-1", tmp_path / "candidate-2"]
    for tree in trees:
        git(root, "worktree", "add", "-q", str(tree))
    # The workspace's own target directory, as a server started without CARGO_TARGET_DIR has.
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    params = StdioServerParameters(command=quorum_bin(), args=["mcp", "--workspace", str(root)], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for n, tree in enumerate(trees):
                arguments = {"command": "cargo test", "package": "calc", "names": ["doubles_two", "double_of_zero"],
                             "worktree": str(tree), "timeout_secs": 600}
                result = await session.call_tool("run_tests", arguments)
                assert not result.is_error, result.content
                out = result.structured_content
                assert (out["passed"], out["failed"], out["success"]) == (2, 0, True), out["output_tail"]
                assert not (tree / "target").exists()
                # The second candidate's build is incremental: the dependency is not built again.
                assert ("Compiling dep" in out["output_tail"]) == (n == 0), out["output_tail"]
            bad = await session.call_tool("run_tests", {"command": "cargo test", "names": ["--list"]})
            assert bad.is_error and "not a test name" in bad.content[0].text
    out_dirs = record.read_text().split()
    assert len(out_dirs) == 2 and all(d.startswith(str(root / "target") + "/") for d in out_dirs), out_dirs


def test_stdio_carries_nothing_but_protocol(workspace):
    """Every stdout line of `quorum mcp` is a JSON-RPC message; logs go to stderr."""
    proc = subprocess.Popen(
        [quorum_bin(), "mcp", "--workspace", str(workspace)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"},
    ]
    out, err = proc.communicate("".join(json.dumps(m) + "\n" for m in messages), timeout=30)
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(m["jsonrpc"] == "2.0" for m in lines)
    # Requests are answered concurrently, so in any order.
    by_id = {m["id"]: m for m in lines}
    assert sorted(by_id) == [1, 2, 3] and len(lines) == 3
    assert len(by_id[2]["result"]["tools"]) == 6
    assert by_id[3]["error"]["code"] == -32601
    assert "serving MCP" in err
