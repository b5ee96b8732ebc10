// Temporary local check (not committed): resolves `--print <targets>` cases via the library.
use std::collections::BTreeMap;
use std::path::Path;
use kiln_bake::{BakeFiles, ResolveOptions};
fn main() {
    let mut pass = 0; let mut total = 0;
    for dir in std::env::args().skip(1) {
        let d = Path::new(&dir);
        let cmd = std::fs::read_to_string(d.join("cmd")).unwrap();
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with('-') && *w != "--print") { continue; }
        total += 1;
        let mut env = BTreeMap::new();
        if let Ok(e) = std::fs::read_to_string(d.join("env")) { for l in e.lines().filter(|l| !l.is_empty()) { let (k,v)=l.split_once('=').unwrap_or((l,"")); env.insert(k.to_string(), v.to_string()); } }
        let names = BakeFiles::discover(d, &env).unwrap();
        let got = BakeFiles::read(d, &names).map_err(|e| e.to_string()).and_then(|f| f.resolve(&ResolveOptions{ targets: words.iter().filter(|w| !w.starts_with('-')).map(|s| s.to_string()).collect(), env, ..Default::default()}).map_err(|e| e.to_string())).map(|r| r.to_print_json());
        let want = std::fs::read_to_string(d.join("expected.json")).ok();
        let wanterr = std::fs::read_to_string(d.join("expected.err")).ok().map(|e| e.lines().nth(1).unwrap_or("").to_string());
        let ok = match (&got, &want, &wanterr) { (Ok(g), Some(w), _) => g == w, (Err(e), _, Some(w)) => format!("ERROR: {e}") == *w, _ => false };
        if ok { pass += 1 } else { println!("FAIL {dir}\n got: {got:?}\n want: {want:?} {wanterr:?}"); }
    }
    println!("{pass}/{total}");
}
