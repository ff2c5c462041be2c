//! Policy loading: any text as a data-map file, and as `retention.toml` next to the demo
//! data map. Never a panic; a failure names one of the files and a line inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

const DEMO_MAP: &str = include_str!("../../policies/datamap.toml");

fn check(files: &[(String, String)]) {
    if let Err(errors) = lethe::policy::load_texts(files) {
        assert!(!errors.0.is_empty(), "a failure carries diagnostics");
        for d in &errors.0 {
            let (_, text) = files
                .iter()
                .find(|(name, _)| name.as_str() == &*d.at.file)
                .unwrap_or_else(|| panic!("diagnostic names no loaded file: {d}"));
            let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
            assert!(d.at.line >= 1 && d.at.line <= lines.max(1) + 1, "{d}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(&[("policies/fuzz.toml".to_string(), text.to_string())]);
    check(&[
        ("policies/datamap.toml".to_string(), DEMO_MAP.to_string()),
        ("policies/retention.toml".to_string(), text.to_string()),
    ]);
});
