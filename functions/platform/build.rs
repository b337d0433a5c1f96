//! Packs the three Swagger UI files `/docs` serves, gzipped, out of the vendored
//! distribution (`utoipa-swagger-ui-vendored`, swagger-ui-dist under Apache-2.0).
//!
//! Embedding the whole distribution cost 11 MB of binary (source maps, three bundle
//! flavours); these three files, compressed once here, are under 0.5 MB and are sent
//! as they are (`Content-Encoding: gzip`), so nothing is compressed per request.

use std::{
    io::{Cursor, Read, Write},
    path::PathBuf,
};

use flate2::{Compression, write::GzEncoder};

const FILES: [&str; 3] = [
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut zip =
        zip::ZipArchive::new(Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED))
            .expect("the vendored Swagger UI is a zip archive");
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let mut version = None;
    for file in FILES {
        let suffix = format!("/dist/{file}");
        let name = names
            .iter()
            .find(|n| n.ends_with(&suffix) && n.matches('/').count() == 2)
            .unwrap_or_else(|| panic!("{file} is not in the vendored Swagger UI"));
        version.get_or_insert_with(|| name.split('/').next().unwrap_or_default().to_owned());
        let mut bytes = Vec::new();
        zip.by_name(name)
            .and_then(|mut entry| Ok(entry.read_to_end(&mut bytes)?))
            .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&bytes).expect("in-memory write");
        let packed = gz.finish().expect("in-memory write");
        std::fs::write(out.join(format!("{file}.gz")), packed).expect("OUT_DIR is writable");
    }
    // e.g. "swagger-ui-5.17.14": names the assets' version in their ETag.
    println!(
        "cargo::rustc-env=SWAGGER_UI_VERSION={}",
        version.unwrap_or_default()
    );
}
