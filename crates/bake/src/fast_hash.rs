//! Hash maps for the evaluator's lookups by name (variables, attributes, targets). Keys
//! are short and come from the bake files themselves, so the standard library's
//! DoS-resistant SipHash buys nothing here and cost a tenth of a resolution; foldhash's
//! fixed-seed hasher is several times cheaper and keeps iteration order the same from run
//! to run.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::FixedState>;
