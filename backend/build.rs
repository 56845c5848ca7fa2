//! Minifies the storefront tracker (`tracker/ghosttrack.js`) at build time with oxc, so the
//! readable source is what lives in git and the binary serves the minified copy at `/t.js`.

use std::path::PathBuf;

use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions, CommentOptions};
use oxc_minifier::{CompressOptions, MangleOptions, Minifier, MinifierOptions};
use oxc_parser::Parser;
use oxc_span::SourceType;

fn main() {
    let source_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tracker/ghosttrack.js");
    println!("cargo:rerun-if-changed={}", source_path.display());
    let source = std::fs::read_to_string(&source_path)
        .unwrap_or_else(|e| panic!("cannot read the tracker source {}: {e}", source_path.display()));

    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, &source, SourceType::script()).parse();
    if !parsed.diagnostics.is_empty() || parsed.panicked {
        let messages: Vec<String> = parsed.diagnostics.iter().map(|d| format!("{d:?}")).collect();
        panic!("tracker/ghosttrack.js does not parse:\n{}", messages.join("\n"));
    }
    let mut program = parsed.program;
    let options = MinifierOptions {
        mangle: Some(MangleOptions::default()),
        mangle_properties: None,
        compress: Some(CompressOptions::smallest()),
    };
    let minified = Minifier::new(options).minify(&allocator, &mut program);
    let code = Codegen::new()
        .with_options(CodegenOptions {
            minify: true,
            comments: CommentOptions::disabled(),
            ..CodegenOptions::default()
        })
        .with_scoping(minified.scoping)
        .build(&program)
        .code;

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ghosttrack.min.js");
    std::fs::write(&out, code).expect("write the minified tracker");
}
