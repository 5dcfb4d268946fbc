//! Size limits on model files, checked before anything is allocated from what a file asks for.
//!
//! A spec or weights file is untrusted input: a spec may ask for a million layers, a kernel of
//! 2^60 taps or a tensor of a terabyte, or nest TOML a million deep. Every such case is a
//! [`crate::NnError::LimitExceeded`] naming the file and the limit, raised before the large
//! allocation, with sizes computed in checked arithmetic. (The `toml` parser, 1.2, also stops at
//! a fixed recursion depth of its own; the nesting limit here does not depend on that.)

use std::path::Path;

use crate::error::NnError;

/// The largest model sepstream builds. The defaults are far above the small streaming CNNs the
/// engine is for (the shipped models have a few thousand to a few hundred thousand parameters)
/// and far below what would exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Bytes of spec TOML text.
    pub max_spec_bytes: usize,
    /// Levels of nested arrays, inline tables and dotted keys in the spec TOML.
    pub max_toml_nesting: usize,
    /// Layers in one model.
    pub max_layers: usize,
    /// Any single size in a spec: input width or channels, out_channels, units, kernel, stride,
    /// dilation, pooling frames, groups.
    pub max_dimension: usize,
    /// f32 values in one frame (the input or any layer's output).
    pub max_frame_values: usize,
    /// Learned f32 parameters in the whole model.
    pub max_params: usize,
    /// f32 values of streaming state (kept history) in the whole model.
    pub max_state_values: usize,
    /// Bytes of a safetensors weights file.
    pub max_weights_bytes: u64,
}

impl ModelLimits {
    /// The limits every loader applies.
    pub const DEFAULT: ModelLimits = ModelLimits {
        max_spec_bytes: 4 << 20,
        max_toml_nesting: 64,
        max_layers: 4096,
        max_dimension: 1 << 16,
        max_frame_values: 1 << 22,
        max_params: 1 << 26,
        max_state_values: 1 << 26,
        // every parameter as f32, plus room for the JSON header
        max_weights_bytes: (1 << 28) + (16 << 20),
    };
}

impl Default for ModelLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The error for `what` = `value` (or more, when the value overflowed) above `limit`.
pub(crate) fn exceeded(
    origin: &Path,
    what: impl Into<String>,
    value: u128,
    limit: u128,
) -> NnError {
    NnError::LimitExceeded {
        path: origin.to_path_buf(),
        what: what.into(),
        value,
        limit,
    }
}

/// `value` if it is at most `limit`, else a [`NnError::LimitExceeded`].
pub(crate) fn at_most(
    origin: &Path,
    what: &str,
    value: u128,
    limit: usize,
) -> Result<u128, NnError> {
    if value > limit as u128 {
        Err(exceeded(origin, what, value, limit as u128))
    } else {
        Ok(value)
    }
}

/// The deepest nesting of arrays, inline tables, table headers and dotted keys in TOML text,
/// found by a linear scan that skips strings and comments. It over-counts rather than
/// under-counts (a dotted key inside an array counts its dots on top of the brackets), which is
/// what a limit wants; text that is not valid TOML gets some number and fails to parse later.
pub fn toml_nesting_depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut open: Vec<u8> = Vec::new(); // the unclosed [ and { of the value being read
    let mut key_dots = 0usize; // dots in the key or header being read
    let mut in_key = true; // reading a key (line start, after `{` or `,` in an inline table)
    let mut in_header = false;
    let mut header_depth = 0usize; // tables opened by the last `[a.b]` header
    let mut deepest = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'\n' if open.is_empty() => {
                if in_header {
                    header_depth = key_dots + 1;
                }
                in_key = true;
                in_header = false;
                key_dots = 0;
            }
            b'[' | b']' if in_header => {}
            b'[' if in_key && open.is_empty() => {
                in_header = true;
                header_depth = 0;
                key_dots = 0;
            }
            b'.' if in_key || in_header => key_dots += 1,
            b'=' if in_key => in_key = false,
            b'[' | b'{' => {
                open.push(b);
                in_key = b == b'{';
            }
            b']' | b'}' => {
                open.pop();
            }
            b',' => in_key = open.last() == Some(&b'{'),
            _ => {}
        }
        deepest = deepest.max(header_depth + open.len() + key_dots + 1);
        i += 1;
    }
    deepest
}

/// The index just past the string starting at `start` (basic, literal or multi-line).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let triple = bytes.len() >= start + 3 && bytes[start + 1] == quote && bytes[start + 2] == quote;
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && quote == b'"' {
            i += 2;
            continue;
        }
        if b == quote {
            if !triple {
                return i + 1;
            }
            if bytes.len() >= i + 3 && bytes[i + 1] == quote && bytes[i + 2] == quote {
                return i + 3;
            }
        }
        if b == b'\n' && !triple {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::toml_nesting_depth;

    #[test]
    fn nesting_counts_brackets_headers_and_dotted_keys() {
        assert_eq!(toml_nesting_depth("a = 1\n"), 1);
        assert_eq!(toml_nesting_depth("a = [[1], [2]]\n"), 3);
        assert_eq!(toml_nesting_depth("[frontend.mel]\nx = 1.5\n"), 3);
        assert_eq!(toml_nesting_depth("[[layers]]\nkind = \"relu\"\n"), 2);
        assert_eq!(toml_nesting_depth("a.b.c = 1\n"), 3);
        assert_eq!(toml_nesting_depth("a = { b = { c.d = 1 } }\n"), 4);
        assert_eq!(toml_nesting_depth("a = \"[[[[.{{\" # [[[[\n"), 1);
        assert_eq!(toml_nesting_depth("a = [1.5, 2.5, 3.5]\n"), 2);
        let deep = format!("a = {}{}\n", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(toml_nesting_depth(&deep), 1001);
    }
}
