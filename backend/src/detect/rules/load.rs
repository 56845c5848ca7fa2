//! Reading rule files: the set embedded in the binary and override directories on disk.

use std::path::Path;

use include_dir::{Dir, include_dir};

use super::compile::err;
use super::{RuleError, RuleSpec};

/// The rule files compiled into the binary.
pub static EMBEDDED_RULES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// Parses a rule file; TOML and shape errors name the line and key.
pub fn parse_spec(path: &str, text: &str) -> Result<RuleSpec, RuleError> {
    toml::from_str::<RuleSpec>(text).map_err(|e| {
        let field = e
            .span()
            .filter(|span| span.start > 0)
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                let line_text = text.lines().nth(line - 1).unwrap_or("");
                let key = line_text.split('=').next().unwrap_or("").trim();
                if key.is_empty() || line_text.trim_start().starts_with('[') {
                    format!("line {line}")
                } else {
                    format!("line {line} `{key}`")
                }
            })
            .unwrap_or_else(|| "(document)".into());
        // Some parse errors carry no message (e.g. a key defined twice deep in a table); the
        // error's full rendering still says what is wrong.
        let constraint = match e.message().trim() {
            "" => e.to_string().lines().last().unwrap_or("").trim().to_owned(),
            message => message.to_owned(),
        };
        let constraint = if constraint.is_empty() { "not valid TOML for a rule".to_owned() } else { constraint };
        RuleError { file: path.to_owned(), field, constraint }
    })
}

pub(super) fn collect_embedded(dir: &Dir<'_>, out: &mut Vec<(String, String, bool)>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        if let Some(stem) = path.strip_suffix(".toml") {
            let has_md = EMBEDDED_RULES.get_file(format!("{stem}.md")).is_some();
            out.push((path.clone(), file.contents_utf8().unwrap_or_default().to_owned(), has_md));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

pub(super) fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String, bool)>, Vec<RuleError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    walk(dir, dir, &mut out, &mut errors);
    if out.is_empty() && errors.is_empty() {
        errors.push(err(&dir.display().to_string(), "(directory)", "holds no .toml rule files"));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String, bool)>, errors: &mut Vec<RuleError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(err(&dir.display().to_string(), "(directory)", &format!("cannot be read: {e}")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, out, errors);
        } else if path.extension().is_some_and(|e| e == "toml") {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            match std::fs::read_to_string(&path) {
                Ok(text) => out.push((rel, text, path.with_extension("md").exists())),
                Err(e) => errors.push(err(&rel, "(file)", &format!("cannot be read: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `rule_file` fuzz target: a parse error whose message is empty.
    #[test]
    fn every_parse_error_names_a_constraint() {
        let text = include_str!("../../../../fuzz/findings/rule_file-empty-constraint.toml");
        let error = parse_spec("fuzz.toml", text).unwrap_err();
        assert!(!error.constraint.is_empty() && !error.field.is_empty(), "{error:?}");
    }
}
