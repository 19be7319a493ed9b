//! `read_file`: a text file or a range of its lines, capped in size.

use std::io::{BufRead, BufReader, Read};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Workspace};

pub const DESCRIPTION: &str = "Read a text file of the workspace, whole or a range of lines (1-based, inclusive). \
Output is capped (max_bytes, default 64 KiB); a note says when and where it was cut. Binary files and .git internals are refused.";

const DEFAULT_MAX_BYTES: usize = 64 * 1024;
const HARD_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Path relative to the workspace root.
    pub path: String,
    /// First line to return (1-based).
    pub start_line: Option<u64>,
    /// Last line to return (inclusive).
    pub end_line: Option<u64>,
    /// Most bytes of content to return (default 65536, at most 1048576).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub path: String,
    pub start_line: u64,
    /// The last line returned (0 when none).
    pub end_line: u64,
    pub total_lines: u64,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub content: String,
}

/// Opens a regular file without blocking: a FIFO opened for reading waits for a writer,
/// and sockets and devices are not files to read.
fn open_regular(path: &std::path::Path, given: &str) -> Result<std::fs::File, ToolError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| ToolError::Io(format!("`{given}`: {e}")))?;
    let meta = file.metadata().map_err(|e| ToolError::Io(format!("`{given}`: {e}")))?;
    if !meta.is_file() {
        return Err(ToolError::refused(format!("`{given}` is not a regular file (a FIFO, socket or device)")));
    }
    Ok(file)
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    let path = ws.resolve_content(&args.path)?;
    if path.is_dir() {
        return Err(ToolError::invalid(format!("`{}` is a directory; analyze_codebase lists directories", args.path)));
    }
    let start = args.start_line.unwrap_or(1);
    if start == 0 {
        return Err(ToolError::invalid("start_line is 1-based"));
    }
    let end = args.end_line.unwrap_or(u64::MAX);
    if end < start {
        return Err(ToolError::invalid("end_line is before start_line"));
    }
    let max_bytes = args.max_bytes.unwrap_or(DEFAULT_MAX_BYTES).clamp(1, HARD_MAX_BYTES);
    let mut file = open_regular(&path, &args.path)?;

    // Binary files: a NUL byte near the start, as git and ripgrep decide.
    let mut head = vec![0u8; 8192];
    let n = file.read(&mut head).map_err(|e| ToolError::Io(e.to_string()))?;
    if head[..n].contains(&0) {
        return Err(ToolError::refused(format!("`{}` is a binary file", args.path)));
    }
    let reader = BufReader::new(std::io::Cursor::new(head[..n].to_vec()).chain(file));

    let mut content = String::new();
    let (mut total, mut last, mut truncated) = (0u64, 0u64, false);
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| ToolError::Io(e.to_string()))?;
        total += 1;
        if total < start || total > end || truncated {
            continue;
        }
        let text = String::from_utf8(line)
            .map_err(|_| ToolError::refused(format!("`{}` is not UTF-8 text (line {total})", args.path)))?;
        if content.len() + text.len() + 1 > max_bytes {
            truncated = true;
            continue;
        }
        content.push_str(&text);
        content.push('\n');
        last = total;
    }
    let note = if truncated {
        Some(format!("truncated after line {last} at {max_bytes} bytes; read on with start_line = {}", last + 1))
    } else if start > total && total > 0 {
        Some(format!("the file has only {total} lines"))
    } else {
        None
    };
    Ok(Output {
        path: ws.relative(&path),
        start_line: start,
        end_line: last,
        total_lines: total,
        truncated,
        note,
        content,
    })
}
